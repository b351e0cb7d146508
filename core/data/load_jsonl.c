/*
 * core/data/load_jsonl: ReDial conversations, one JSON object per line, parsed with json-c.
 * A message's mentioned items are its "@<digits>" references (ReDial's convention); the
 * titles come from the conversation's movieMentions map.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <json-c/json.h>
#include <string.h>

/* Text of an id that may be a JSON string or integer; NULL when neither. */
static const char *id_text(json_object *o, char buf[32], size_t *n)
{
    if (json_object_is_type(o, json_type_string)) {
        *n = (size_t)json_object_get_string_len(o);
        return json_object_get_string(o);
    }
    if (json_object_is_type(o, json_type_int)) {
        int l = snprintf(buf, 32, "%lld", (long long)json_object_get_int64(o));
        *n = (size_t)l;
        return buf;
    }
    return NULL;
}

static int conv_line(rlab_reader *r, json_object *obj, rlab_dialogues *d, rlab_err *err)
{
    json_object *jid, *jmsgs, *jini, *jres, *jmm;
    if (!json_object_is_type(obj, json_type_object))
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "expected a JSON object (one conversation per line)");
    char ibuf[32];
    size_t idn = 0;
    const char *id =
        json_object_object_get_ex(obj, "conversationId", &jid) ? id_text(jid, ibuf, &idn) : NULL;
    if (!id)
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "missing or non-string conversationId, expected a string or integer");
    if (!json_object_object_get_ex(obj, "messages", &jmsgs) ||
        !json_object_is_type(jmsgs, json_type_array))
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "missing messages, expected an array of message objects");
    if (!json_object_object_get_ex(obj, "initiatorWorkerId", &jini) ||
        !json_object_is_type(jini, json_type_int) ||
        !json_object_object_get_ex(obj, "respondentWorkerId", &jres) ||
        !json_object_is_type(jres, json_type_int))
        return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                            "missing initiatorWorkerId / respondentWorkerId, expected integers");
    int64_t ini = json_object_get_int64(jini), res = json_object_get_int64(jres);
    /* movieMentions: {id: name} (an empty list [] in some ReDial lines) */
    if (json_object_object_get_ex(obj, "movieMentions", &jmm) &&
        json_object_is_type(jmm, json_type_object)) {
        json_object_object_foreach(jmm, key, val)
        {
            const char *title =
                json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;
            if (title && rlab_utf8_invalid_at(title, strlen(title)) >= 0)
                return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                    "movie title of %s is not valid UTF-8, expected UTF-8 text",
                                    key);
            if (rlab_dlg_item(d, key, strlen(key), title) < 0)
                return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
        }
    }
    rlab_conv *c = rlab_dlg_conv(d, id, idn);
    if (!c)
        return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
    size_t nm = json_object_array_length(jmsgs);
    for (size_t m = 0; m < nm; m++) {
        json_object *msg = json_object_array_get_idx(jmsgs, m), *jt, *js, *jo;
        if (!json_object_is_type(msg, json_type_object) ||
            !json_object_object_get_ex(msg, "text", &jt) ||
            !json_object_is_type(jt, json_type_string) ||
            !json_object_object_get_ex(msg, "senderWorkerId", &js) ||
            !json_object_is_type(js, json_type_int))
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "message %zu: expected an object with text (string) and "
                                "senderWorkerId (integer)",
                                m + 1);
        int64_t sender = json_object_get_int64(js);
        if (sender != ini && sender != res)
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "message %zu: senderWorkerId %lld is neither the initiator "
                                "(%lld) nor the respondent (%lld)",
                                m + 1, (long long)sender, (long long)ini, (long long)res);
        const char *text = json_object_get_string(jt);
        size_t tn = (size_t)json_object_get_string_len(jt);
        if (memchr(text, '\0', tn) || rlab_utf8_invalid_at(text, tn) >= 0)
            return rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                "message %zu: text is not valid UTF-8, expected UTF-8 text", m + 1);
        rlab_turn *t = rlab_dlg_turn(c);
        if (!t)
            return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
        t->role = sender == ini ? RLAB_ROLE_SEEKER : RLAB_ROLE_RECOMMENDER;
        char sb[32];
        snprintf(sb, sizeof sb, "%lld", (long long)sender);
        t->speaker = rlab_strdup(sb);
        t->text = rlab_strndup(text, tn);
        if (!t->speaker || !t->text)
            return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
        if (json_object_object_get_ex(msg, "timeOffset", &jo) &&
            json_object_is_type(jo, json_type_int))
            t->time = json_object_get_int64(jo);
        /* "@123" references */
        for (size_t i = 0; i + 1 < tn; i++) {
            if (text[i] != '@' || text[i + 1] < '0' || text[i + 1] > '9')
                continue;
            size_t b = i + 1, e = b;
            while (e < tn && text[e] >= '0' && text[e] <= '9')
                e++;
            int32_t item = rlab_dlg_item(d, text + b, e - b, NULL);
            if (item < 0 || rlab_dlg_turn_item(t, item))
                return rlab_errf_at(err, RLAB_ENOMEM, r->name, r->line, "out of memory");
            i = e - 1;
        }
    }
    return RLAB_OK;
}

int rlab_ld_redial(rlab_reader *r, rlab_dialogues *d, rlab_err *err)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return rlab_errf(err, RLAB_ENOMEM, "json: out of memory");
    const char *s;
    size_t n;
    int rc;
    while ((rc = rlab_reader_next(r, &s, &n, err)) == RLAB_OK && s) {
        if (n == 0)
            continue;
        if (n > INT32_MAX) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line, "line too long");
            break;
        }
        json_tokener_reset(tok);
        json_object *obj = json_tokener_parse_ex(tok, s, (int)n);
        enum json_tokener_error je = json_tokener_get_error(tok);
        if (!obj || je != json_tokener_success) {
            json_object_put(obj);
            if (je == json_tokener_continue)
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "truncated JSON (the line ends inside a value), expected one "
                                  "complete object per line");
            else
                rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                                  "invalid JSON at byte %zu: %s, expected one object per line",
                                  json_tokener_get_parse_end(tok) + 1, json_tokener_error_desc(je));
            break;
        }
        size_t end = json_tokener_get_parse_end(tok);
        while (end < n && (s[end] == ' ' || s[end] == '\t'))
            end++;
        if (end < n) {
            json_object_put(obj);
            rc = rlab_errf_at(err, RLAB_EFORMAT, r->name, r->line,
                              "text after the JSON object at byte %zu, expected one object per "
                              "line",
                              end + 1);
            break;
        }
        rc = conv_line(r, obj, d, err);
        json_object_put(obj);
        if (rc)
            break;
    }
    json_tokener_free(tok);
    return rc;
}
