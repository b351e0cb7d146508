/*
 * lua/lpretty.c: reclab.pretty(v [, width]), the readable form of a value that the shell's
 * `=expr`, `lua CODE` and `reclab -e` print for the values a chunk returns (print() itself
 * keeps Lua's tostring).
 *
 * A table shows one level deep, one entry per line with its keys aligned, the sequence part
 * first ([1], [2]...), then the other keys sorted ("name" first); nested tables are
 * summarised on their line ({name = "bpr", kind = "bprmf", ... +3}); strings inside tables
 * are quoted and long ones cut; Model handles show by name; at most 40 entries are listed.
 * Scalars and strings at the top print as print() would.
 *
 *     {
 *       [1] = {name = "bprmf", dataset = "ml100k", kind = "bprmf", ... +4}
 *       [2] = {name = "pop", dataset = "ml100k", kind = "pop", ... +4}
 *     }
 *
 * Tables are walked with raw access (no __index / __pairs); only __tostring is called, inside
 * a protected call, so a failing metamethod prints as <__tostring error> instead of raising.
 * The text is built in a box userdata whose __gc frees it, so no C allocation is lost when
 * Lua raises (out of memory).
 */
#include "lreclab_internal.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define PRETTY_MAX_ENTRIES 40 /* entries listed of a top-level table */
#define PRETTY_STR_TOP 60     /* bytes of a string value on its own line */
#define PRETTY_STR_INLINE 24  /* bytes of a string inside a summary */

typedef struct pbuf {
    char *p;
    size_t n, cap;
} pbuf;

static int pbuf_gc(lua_State *L)
{
    pbuf *b = lua_touserdata(L, 1);
    rlab_free(b->p);
    b->p = NULL;
    return 0;
}

static void put(lua_State *L, pbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *np = rlab_realloc(b->p, nc);
        if (!np)
            luaL_error(L, "pretty: out of memory");
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(lua_State *L, pbuf *b, const char *s) { put(L, b, s, strlen(s)); }

static void pad(lua_State *L, pbuf *b, int n)
{
    for (int i = 0; i < n; i++)
        put(L, b, " ", 1);
}

/* tostring of the value at idx through __tostring / __name, protected */
static int tostring_cf(lua_State *L)
{
    luaL_tolstring(L, 1, NULL); /* v s */
    return 1;
}

static void put_tostring(lua_State *L, pbuf *b, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, tostring_cf); /* f */
    lua_pushvalue(L, idx);             /* f v */
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
        puts_(L, b, lua_tostring(L, -1));
    else
        puts_(L, b, "<__tostring error>");
    lua_pop(L, 1); /* */
}

/* A string quoted, escaped, cut to max bytes (at a UTF-8 character boundary). */
static void put_quoted(lua_State *L, pbuf *b, const char *s, size_t n, size_t max)
{
    size_t cut = n;
    if (n > max) {
        cut = max;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    put(L, b, "\"", 1);
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(L, b, esc, 2);
        } else if (c == '\n') {
            put(L, b, "\\n", 2);
        } else if (c == '\t') {
            put(L, b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\%d", c);
            puts_(L, b, esc);
        } else {
            put(L, b, (const char *)&s[i], 1);
        }
    }
    put(L, b, "\"", 1);
    if (cut < n)
        put(L, b, "...", 3);
}

/* The value of a reclab.Model handle by name: Model(bprmf). */
static int put_model(lua_State *L, pbuf *b, int idx)
{
    if (!lua_getmetatable(L, idx)) /* mt */
        return 0;
    luaL_getmetatable(L, RLAB_LUA_MODEL_MT); /* mt MT */
    int is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2); /* */
    if (!is)
        return 0;
    lua_pushcfunction(L, tostring_cf); /* f */
    lua_pushvalue(L, idx);             /* f v */
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        puts_(L, b, strncmp(s, "reclab.", 7) == 0 ? s + 7 : s);
    } else {
        puts_(L, b, "Model(?)");
    }
    lua_pop(L, 1); /* */
    return 1;
}

static int is_ident(const char *s, size_t n)
{
    static const char *const reserved[] = {
        "and",      "break",  "do",   "else", "elseif", "end",   "false", "for",
        "function", "goto",   "if",   "in",   "local",  "nil",   "not",   "or",
        "repeat",   "return", "then", "true", "until",  "while", NULL};
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return 0;
    }
    for (int i = 0; reserved[i]; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0)
            return 0;
    return 1;
}

/* ---- the keys of a table, in display order ------------------------------------------- */

typedef struct pkey {
    int rank; /* 0 "name", 1 numbers, 2 strings, 3 other */
    double num;
    const char *s;
    size_t n;
    int slot; /* index in the anchoring key table */
} pkey;

static int cmp_key(const void *a, const void *b)
{
    const pkey *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    if (x->rank == 1)
        return (x->num > y->num) - (x->num < y->num);
    if (x->rank == 2) {
        int c = strcmp(x->s, y->s);
        return c ? c : (x->n > y->n) - (x->n < y->n);
    }
    return x->slot - y->slot;
}

/* Keys of table t outside its sequence 1..seq, pushed anchored in a new table (left on the
 * stack) and returned sorted in a userdata array (also left on the stack, above). */
static pkey *collect_keys(lua_State *L, int t, lua_Integer seq, int *nkeys)
{
    t = lua_absindex(L, t);
    lua_newtable(L); /* K */
    int n = 0;
    lua_pushnil(L);          /* K nil */
    while (lua_next(L, t)) { /* K k v */
        lua_pop(L, 1);       /* K k */
        if (lua_isinteger(L, -1)) {
            lua_Integer i = lua_tointeger(L, -1);
            if (i >= 1 && i <= seq)
                continue;
        }
        lua_pushvalue(L, -1);    /* K k k */
        lua_rawseti(L, -3, ++n); /* K k */
    }
    pkey *keys = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *keys, 0); /* K U */
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -2, i + 1); /* K U k */
        pkey *k = &keys[i];
        memset(k, 0, sizeof *k);
        k->slot = i + 1;
        if (lua_type(L, -1) == LUA_TNUMBER) {
            k->rank = 1;
            k->num = (double)lua_tonumber(L, -1);
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            k->s = lua_tolstring(L, -1, &k->n); /* anchored in K */
            k->rank = (k->n == 4 && memcmp(k->s, "name", 4) == 0) ? 0 : 2;
        } else {
            k->rank = 3;
        }
        lua_pop(L, 1); /* K U */
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_key);
    *nkeys = n;
    return keys;
}

/* The key as shown: [1], name, ["a b"], [true]. */
static void put_key(lua_State *L, pbuf *b, int kidx)
{
    if (lua_type(L, kidx) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, kidx, &n);
        if (is_ident(s, n)) {
            put(L, b, s, n);
            return;
        }
        put(L, b, "[", 1);
        put_quoted(L, b, s, n, PRETTY_STR_INLINE);
        put(L, b, "]", 1);
        return;
    }
    put(L, b, "[", 1);
    put_tostring(L, b, kidx);
    put(L, b, "]", 1);
}

static void put_value(lua_State *L, pbuf *b, int idx, int depth, size_t strmax, size_t width);

/* A nested table on one line, stopping near width: {1, 2, ... +8} / {k = v, ... +3} / {...} */
static void put_summary(lua_State *L, pbuf *b, int t, int depth, size_t width)
{
    t = lua_absindex(L, t);
    if (luaL_getmetafield(L, t, "__tostring") != LUA_TNIL) { /* mt-f */
        lua_pop(L, 1);                                       /* */
        put_tostring(L, b, t);
        return;
    }
    lua_Integer seq = (lua_Integer)lua_rawlen(L, t);
    int nkeys = 0;
    pkey *keys = collect_keys(L, t, seq, &nkeys); /* K U */
    int total = (int)seq + nkeys;
    if (total == 0) {
        puts_(L, b, "{}");
        lua_pop(L, 2); /* */
        return;
    }
    if (depth >= 2) { /* two levels down: only the size */
        char s[48];
        snprintf(s, sizeof s, "{... %d entr%s}", total, total == 1 ? "y" : "ies");
        puts_(L, b, s);
        lua_pop(L, 2); /* */
        return;
    }
    size_t start = b->n;
    put(L, b, "{", 1);
    int shown = 0;
    for (int i = 0; i < total; i++) {
        if (b->n - start > width) /* full: say how many were left out */
            break;
        if (i > 0)
            put(L, b, ", ", 2);
        if (i < seq) {
            lua_rawgeti(L, t, i + 1); /* K U v */
        } else {
            lua_rawgeti(L, -2, keys[i - seq].slot); /* K U k */
            put_key(L, b, -1);
            put(L, b, " = ", 3);
            lua_rawget(L, t); /* K U v */
        }
        put_value(L, b, -1, depth + 1, PRETTY_STR_INLINE, width);
        lua_pop(L, 1); /* K U */
        shown++;
    }
    if (shown < total) {
        char s[32];
        snprintf(s, sizeof s, ", ... +%d", total - shown);
        puts_(L, b, s);
    }
    put(L, b, "}", 1);
    lua_pop(L, 2); /* */
}

static void put_value(lua_State *L, pbuf *b, int idx, int depth, size_t strmax, size_t width)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_quoted(L, b, s, n, strmax);
        return;
    }
    case LUA_TTABLE:
        put_summary(L, b, idx, depth, width);
        return;
    case LUA_TUSERDATA:
        if (put_model(L, b, idx))
            return;
        break;
    default:
        break;
    }
    put_tostring(L, b, idx);
}

/* A top-level table: one entry per line, keys aligned. */
static void put_table(lua_State *L, pbuf *b, int t, size_t width)
{
    t = lua_absindex(L, t);
    lua_Integer seq = (lua_Integer)lua_rawlen(L, t);
    int nkeys = 0;
    pkey *keys = collect_keys(L, t, seq, &nkeys); /* K U */
    int total = (int)seq + nkeys;
    if (total == 0) {
        puts_(L, b, "{}");
        lua_pop(L, 2); /* */
        return;
    }
    int shown = total < PRETTY_MAX_ENTRIES ? total : PRETTY_MAX_ENTRIES;
    /* the key column: as wide as the widest key shown */
    int kw = 0;
    for (int i = 0; i < shown; i++) {
        size_t before = b->n;
        if (i < seq) {
            char s[32];
            snprintf(s, sizeof s, "[%d]", i + 1);
            kw = (int)strlen(s) > kw ? (int)strlen(s) : kw;
            continue;
        }
        lua_rawgeti(L, -2, keys[i - seq].slot); /* K U k */
        put_key(L, b, -1);
        int w = (int)(b->n - before);
        b->n = before; /* measured, not kept */
        b->p[b->n] = '\0';
        lua_pop(L, 1); /* K U */
        kw = w > kw ? w : kw;
    }
    puts_(L, b, "{\n");
    for (int i = 0; i < shown; i++) {
        size_t line = b->n;
        puts_(L, b, "  ");
        if (i < seq) {
            char s[32];
            snprintf(s, sizeof s, "[%d]", i + 1);
            puts_(L, b, s);
            lua_rawgeti(L, t, i + 1); /* K U v */
        } else {
            lua_rawgeti(L, -2, keys[i - seq].slot); /* K U k */
            put_key(L, b, -1);
            lua_rawget(L, t); /* K U v */
        }
        pad(L, b, kw + 2 - (int)(b->n - line));
        puts_(L, b, " = ");
        size_t used = b->n - line;
        put_value(L, b, -1, 1, PRETTY_STR_TOP, width > used + 8 ? width - used - 8 : 16);
        lua_pop(L, 1); /* K U */
        put(L, b, "\n", 1);
    }
    if (shown < total) {
        char s[64];
        snprintf(s, sizeof s, "  ... (%d more entr%s)\n", total - shown,
                 total - shown == 1 ? "y" : "ies");
        puts_(L, b, s);
    }
    put(L, b, "}", 1);
    lua_pop(L, 2); /* */
}

/* reclab.pretty(v [, width]) -> string */
int rlab_lua_pretty(lua_State *L)
{
    size_t width = (size_t)luaL_optinteger(L, 2, 100);
    if (width < 40)
        width = 40;
    lua_settop(L, 1);                             /* v */
    pbuf *b = lua_newuserdatauv(L, sizeof *b, 0); /* v B */
    memset(b, 0, sizeof *b);
    if (luaL_newmetatable(L, "reclab.pretty.buffer")) { /* v B mt */
        lua_pushcfunction(L, pbuf_gc);                  /* v B mt gc */
        lua_setfield(L, -2, "__gc");                    /* v B mt */
    }
    lua_setmetatable(L, -2); /* v B */
    int ty = lua_type(L, 1);
    if (ty == LUA_TTABLE && luaL_getmetafield(L, 1, "__tostring") == LUA_TNIL)
        put_table(L, b, 1, width);
    else if (ty == LUA_TTABLE) { /* v B f: a table that prints itself */
        lua_pop(L, 1);           /* v B */
        put_tostring(L, b, 1);
    } else if (ty == LUA_TUSERDATA && put_model(L, b, 1))
        ;
    else
        put_tostring(L, b, 1);                  /* strings and scalars as print() shows them */
    lua_pushlstring(L, b->p ? b->p : "", b->n); /* v B s */
    return 1;
}
