/*
 * tests/llm: a small HTTP/1.1 server speaking the OpenAI chat-completions protocol on
 * loopback, for the core/llm tests and throughput measurement. It runs in threads of the
 * calling process (one accept thread, one thread per connection, keep-alive supported).
 *
 * The reply is chosen by the request's "model" field:
 *   echo (or anything else)  200, content "echo: <last user message>", with usage
 *   delay:<ms>               the echo reply after <ms> milliseconds
 *   inspect                  200, content = the raw request body (to check options)
 *   malformed                200 with a truncated JSON body
 *   nocontent                200 with {"choices": []}
 *   fail429:<n>              429 + Retry-After: 0 for the first n attempts of the same
 *                            (model, last user message), then the echo reply
 *   fail500:<n>              500 (no Retry-After) likewise, then the echo reply
 *   retryafter1              429 + Retry-After: 1 once, then the echo reply
 *   slow                     waits up to 10 s (ends early when the client hangs up or the
 *                            server stops), then the echo reply
 *   drop                     closes the connection without any response
 *   authecho                 401 whose error message repeats the Authorization header
 *                            (as some hosted APIs do with bad keys)
 *   bad400                   400 with an error message (not retryable)
 */
#ifndef FAKE_LLM_SERVER_H
#define FAKE_LLM_SERVER_H

#include <stddef.h>

typedef struct fake_llm fake_llm;

/* Start on 127.0.0.1:port (0 = an ephemeral port). NULL with a message in err on failure. */
fake_llm *fake_llm_start(int port, char *err, size_t errn);
/* Stop: wakes and joins every thread, closes every socket. NULL ok. */
void fake_llm_stop(fake_llm *s);
int fake_llm_port(const fake_llm *s);
/* Requests received (complete request heads), and the peak number handled at once. */
long fake_llm_requests(fake_llm *s);
int fake_llm_peak(fake_llm *s);
void fake_llm_reset_stats(fake_llm *s);
/* The Authorization header of the last request ("" when none). */
void fake_llm_last_auth(fake_llm *s, char *buf, size_t n);

#endif
