/*
 * core/data/load_attrs: S3Rec-style item attribute files (<name>_item2attributes.json, the
 * Amazon Beauty / Sports / Toys attributes: brand + categories as integer ids), one JSON
 * object {"item id": [attribute id, ...], ...}, into the item feature "attributes"
 * (TOKEN_SEQ; values are the attribute ids as text). Parsed with json-c.
 */
#include "data/loaders.h"
#include "data/tokenizer.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Move the one finished column of tmp (n rows) into f as a new column. */
static int adopt_column(rlab_feats *f, rlab_feats *tmp, int32_t n)
{
    rlab_feat_col *c = rlab_feats_add(f, tmp->cols[0].name, tmp->cols[0].kind);
    if (!c)
        return RLAB_ENOMEM;
    *c = tmp->cols[0];
    tmp->ncols = 0;
    if (f->ncols == 1) /* a table without columns takes the column's rows */
        f->n_entities = n;
    return RLAB_OK;
}

/* Parse buf (n bytes, label for errors) into ds's item feature "attributes". add: 1 = items
 * not in ds->items are added to the vocabulary, 0 = skipped (counted in *skipped). */
static int parse_attrs(const char *buf, size_t n, const char *label, rlab_dataset *ds, int add,
                       int64_t *skipped, rlab_err *err)
{
    if (rlab_feats_find(&ds->item_feats, "attributes"))
        return rlab_errf_at(err, RLAB_EINVAL, label, 0,
                            "dataset '%s' already has an item feature 'attributes'", ds->name);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, buf, (int)n);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t at = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || je != json_tokener_success) {
        json_object_put(root);
        return rlab_errf_at(
            err, RLAB_EFORMAT, label, 1, "byte %zu: %s, expected one JSON object", at + 1,
            je == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(je));
    }
    if (!json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return rlab_errf_at(err, RLAB_EFORMAT, label, 1,
                            "expected a JSON object {\"item id\": [attribute ids]}");
    }
    rlab_feats tmp;
    rlab_feats_init(&tmp);
    rlab_fb fb;
    rlab_fb_init(&fb, &tmp);
    int rc = RLAB_OK;
    int c = rlab_fb_add_col(&fb, "attributes", RLAB_FEAT_TOKEN_SEQ);
    if (c < 0)
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    int64_t skip = 0;
    json_object_object_foreach(root, key, val)
    {
        if (rc)
            break;
        const char *k = key;
        size_t kl = strlen(key);
        rlab_id_canon(&k, &kl);
        if (kl == 0 || rlab_utf8_invalid_at(k, kl) >= 0) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, label, 1,
                              "empty or invalid UTF-8 item id, expected an item id");
            break;
        }
        if (!json_object_is_type(val, json_type_array)) {
            rc = rlab_errf_at(err, RLAB_EFORMAT, label, 1,
                              "item %s: expected an array of attribute ids", key);
            break;
        }
        int32_t it = add ? rlab_vocab_add(&ds->items, k, kl) : rlab_vocab_find(&ds->items, k, kl);
        if (add && it < 0) {
            rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
            break;
        }
        size_t na = json_object_array_length(val);
        for (size_t a = 0; a < na && !rc; a++) {
            json_object *v = json_object_array_get_idx(val, a);
            char t[32];
            int tl;
            if (json_object_is_type(v, json_type_int))
                tl = snprintf(t, sizeof t, "%lld", (long long)json_object_get_int64(v));
            else if (json_object_is_type(v, json_type_string) &&
                     json_object_get_string_len(v) > 0 && json_object_get_string_len(v) < 32 &&
                     rlab_utf8_invalid_at(json_object_get_string(v),
                                          (size_t)json_object_get_string_len(v)) < 0)
                tl = snprintf(t, sizeof t, "%s", json_object_get_string(v));
            else {
                rc = rlab_errf_at(err, RLAB_EFORMAT, label, 1,
                                  "item %s, attribute %zu: expected an integer or a short "
                                  "string id",
                                  key, a + 1);
                break;
            }
            if (it >= 0 && rlab_fb_add_seq(&fb, c, it, t, (size_t)tl))
                rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
        }
        if (it < 0)
            skip++;
    }
    json_object_put(root);
    int32_t ni = rlab_vocab_size(&ds->items);
    if (rc == RLAB_OK && (rc = rlab_fb_finish(&fb, ni)) != RLAB_OK)
        rlab_errf(err, rc, "out of memory");
    else if (rc)
        rlab_fb_clear(&fb);
    if (rc == RLAB_OK && adopt_column(&ds->item_feats, &tmp, ni))
        rc = rlab_errf(err, RLAB_ENOMEM, "out of memory");
    rlab_feats_clear(&tmp);
    if (skipped)
        *skipped = skip;
    return rc;
}

int rlab_ld_item_attrs_buffer(rlab_reader *r, rlab_dataset *ds, rlab_err *err)
{
    /* the memory reader's bytes as one document */
    return parse_attrs(r->mem, r->memlen, r->name, ds, 1, NULL, err);
}

int rlab_load_item_attrs(rlab_dataset *ds, const char *path, int64_t *skipped, rlab_err *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rlab_errf_at(err, RLAB_EIO, path, 0, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 30)) {
        fclose(fp);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "not a regular file under 1 GiB");
    }
    size_t n = (size_t)st.st_size;
    char *buf = rlab_malloc(n ? n : 1);
    if (!buf) {
        fclose(fp);
        return rlab_errf(err, RLAB_ENOMEM, "out of memory");
    }
    size_t got = fread(buf, 1, n, fp);
    fclose(fp);
    if (got != n) {
        rlab_free(buf);
        return rlab_errf_at(err, RLAB_EIO, path, 0, "short read");
    }
    int rc = parse_attrs(buf, n, path, ds, 0, skipped, err);
    rlab_free(buf);
    return rc;
}

int rlab_ld_attach_sibling_attrs(rlab_dataset *ds, const char *path, rlab_err *err)
{
    /* <dir>/<stem>.txt or <stem>.sasrec.txt -> <dir>/<stem>_item2attributes.json */
    char p[1024];
    size_t n = strlen(path);
    if (n + 32 >= sizeof p)
        return RLAB_OK;
    memcpy(p, path, n + 1);
    char *slash = strrchr(p, '/');
    char *dot = strrchr(slash ? slash : p, '.');
    if (dot && dot != (slash ? slash + 1 : p))
        *dot = 0;
    size_t l = strlen(p);
    if (l > 7 && strcmp(p + l - 7, ".sasrec") == 0)
        p[l - 7] = 0;
    strcat(p, "_item2attributes.json");
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode))
        return RLAB_OK;
    return rlab_load_item_attrs(ds, p, NULL, err);
}
