/*
 * tests/simulator: a minimal OpenAI-compatible chat-completions server on loopback that
 * answers RecAgent prompts with well-formed tags (tests/llm's fake server only echoes, which
 * is an unparsable answer for the simulator). One accept thread, one thread per open connection (at
 * most 128 at once), HTTP/1.1 keep-alive.
 *
 * Reply by the request's "model":
 *   "agent" (or anything else)  a tagged answer chosen from the prompt's instructions:
 *                               [RECOMMENDER], [BUY]:: 1, [CHAT]:: <first friend>, [FEELING]::,
 *                               [SAY]:: ...
 *   "garbage"                   "I am not sure." (no tag: unparsable)
 *   ...mixed... (e.g. "delay:5~30,mixed")  like "agent", but a page prompt gets BUY 1, NEXT or
 *                               LEAVE by a hash of the prompt text
 *   "delay:<ms>"                the "agent" answer after <ms> milliseconds
 *   "delay:<a>~<b>"             idem after a uniform draw in [a, b] ms per request (replies
 *                               arrive out of request order)
 *   "auth"                      HTTP 401 with an OpenAI-style error object (a bad key)
 *   "hang"                      no answer at all: holds the request until the client hangs
 *                               up or the server stops (a client timeout is the only way out)
 * An unreachable server: start one, note its port, stop it (the port is then closed).
 */
#ifndef FAKE_REC_LLM_H
#define FAKE_REC_LLM_H

typedef struct fake_rec_llm fake_rec_llm;

/* Start on 127.0.0.1 with an ephemeral port; NULL on failure. */
fake_rec_llm *fake_rec_llm_start(void);
void fake_rec_llm_stop(fake_rec_llm *s);
int fake_rec_llm_port(const fake_rec_llm *s);
/* Requests answered so far, and the peak number handled at once. */
long fake_rec_llm_requests(fake_rec_llm *s);
int fake_rec_llm_peak(fake_rec_llm *s);

#endif
