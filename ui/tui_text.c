/*
 * ui/tui_text.c: text helpers of the shell: display widths of UTF-8 text (mbrtowc +
 * wcwidth, as rlncurses' strnwidth), width-limited drawing that never splits a wide
 * character, sanitising of output lines, compact number formatting, colour roles.
 */
#include "tui.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

/* Decode one character at s (at most n bytes). *len gets the bytes used (>= 1), *cw its
 * display width; *wc the wide character to draw, or 0 for a control drawn as ^X (then
 * *ctl is the letter) or an invalid byte drawn as '?'. */
static void decode(const char *s, size_t n, size_t *len, int *cw, wchar_t *wc, char *ctl)
{
    unsigned char c = (unsigned char)s[0];
    *ctl = 0;
    if (c < 0x20 || c == 0x7f) {
        *len = 1;
        *cw = 2;
        *wc = 0;
        *ctl = c == 0x7f ? '?' : (char)(c + '@');
        return;
    }
    if (c < 0x80) {
        *len = 1;
        *cw = 1;
        *wc = (wchar_t)c;
        return;
    }
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t w = 0;
    size_t r = mbrtowc(&w, s, n, &st);
    if (r == (size_t)-1 || r == (size_t)-2 || r == 0) {
        *len = 1;
        *cw = 1;
        *wc = L'?';
        return;
    }
    int width = wcwidth(w);
    *len = r;
    if (width < 0) { /* non-printable */
        *cw = 1;
        *wc = L'?';
        return;
    }
    *cw = width;
    *wc = w;
}

int tui_width(const char *s, size_t n)
{
    if (!s)
        return 0;
    if (n == (size_t)-1)
        n = strlen(s);
    int wsum = 0;
    size_t i = 0;
    while (i < n && s[i]) {
        size_t len;
        int cw;
        wchar_t wc;
        char ctl;
        decode(s + i, n - i, &len, &cw, &wc, &ctl);
        wsum += cw;
        i += len;
    }
    return wsum;
}

size_t tui_fit(const char *s, int maxw)
{
    size_t n = strlen(s), i = 0;
    int used = 0;
    while (i < n) {
        size_t len;
        int cw;
        wchar_t wc;
        char ctl;
        decode(s + i, n - i, &len, &cw, &wc, &ctl);
        if (used + cw > maxw)
            break;
        used += cw;
        i += len;
    }
    return i;
}

int tui_put(WINDOW *w, int y, int x, const char *s, int maxw, attr_t attr)
{
    if (!s || maxw <= 0)
        return 0;
    size_t n = strlen(s), i = 0;
    int used = 0;
    wchar_t buf[256];
    int nb = 0;
    wmove(w, y, x);
    wattr_set(w, attr, (short)PAIR_NUMBER(attr), NULL);
    while (i < n) {
        size_t len;
        int cw;
        wchar_t wc;
        char ctl;
        decode(s + i, n - i, &len, &cw, &wc, &ctl);
        if (used + cw > maxw)
            break;
        if (cw == 0 && nb == 0 && used == 0) { /* a leading combining mark: skip */
            i += len;
            continue;
        }
        if (ctl) {
            if (nb + 2 >= 255) {
                waddnwstr(w, buf, nb);
                nb = 0;
            }
            buf[nb++] = L'^';
            buf[nb++] = (wchar_t)ctl;
        } else {
            if (nb + 1 >= 255) {
                waddnwstr(w, buf, nb);
                nb = 0;
            }
            buf[nb++] = wc;
        }
        used += cw;
        i += len;
    }
    if (nb)
        waddnwstr(w, buf, nb);
    wattr_set(w, A_NORMAL, 0, NULL);
    return used;
}

void tui_put_pad(WINDOW *w, int y, int x, const char *s, int maxw, attr_t attr)
{
    int used = tui_put(w, y, x, s ? s : "", maxw, attr);
    if (used < maxw) {
        wmove(w, y, x + used);
        wattr_set(w, attr, (short)PAIR_NUMBER(attr), NULL);
        for (int i = used; i < maxw; i++)
            waddch(w, ' ');
        wattr_set(w, A_NORMAL, 0, NULL);
    }
}

char *tui_sanitize(const char *s, size_t n)
{
    if (!s)
        s = "";
    if (n == (size_t)-1)
        n = strlen(s);
    char *out = rlab_malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    while (i < n && s[i]) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t') {
            out[o++] = ' ';
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            if (c == 0x1b) { /* drop an escape sequence: ESC [ ... final byte */
                i++;
                if (i < n && s[i] == '[') {
                    i++;
                    while (i < n && s[i] &&
                           !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
                        i++;
                    if (i < n && s[i])
                        i++;
                }
                continue;
            }
            i++; /* other controls (\r, \a, ...) vanish */
        } else if (c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else {
            mbstate_t st;
            memset(&st, 0, sizeof st);
            wchar_t w;
            size_t r = mbrtowc(&w, s + i, n - i, &st);
            if (r == (size_t)-1 || r == (size_t)-2 || r == 0 || wcwidth(w) < 0) {
                out[o++] = '?';
                i++;
            } else {
                memcpy(out + o, s + i, r);
                o += r;
                i += r;
            }
        }
    }
    out[o] = 0;
    return out;
}

void tui_fmt_num(double v, char *buf, size_t cap)
{
    if (isnan(v)) {
        snprintf(buf, cap, "-");
        return;
    }
    double a = fabs(v);
    if (!islessgreater(v, floor(v)) && a < 1e9)
        snprintf(buf, cap, "%.0f", v);
    else if (a < 1 && a >= 1e-4) { /* ".0831", "-.512" */
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.4f", a);
        snprintf(buf, cap, "%s%s", v < 0 ? "-" : "", tmp + 1);
    } else if (a >= 1e-4 && a < 1e5)
        snprintf(buf, cap, "%.4g", v);
    else
        snprintf(buf, cap, "%.3g", v);
}

void tui_hline(tui *t, WINDOW *w, int y, int x, int n, attr_t attr)
{
    wmove(w, y, x);
    wattr_set(w, attr, (short)PAIR_NUMBER(attr), NULL);
    for (int i = 0; i < n; i++) {
        if (t->utf8)
            waddwstr(w, L"\u2500");
        else
            waddch(w, '-');
    }
    wattr_set(w, A_NORMAL, 0, NULL);
}

attr_t tui_attr(const tui *t, tui_role r)
{
    if (t->color) {
        switch (r) {
        case TUI_R_NORMAL:
            return A_NORMAL;
        case TUI_R_TITLE:
            return COLOR_PAIR(1) | A_BOLD;
        case TUI_R_HEAD:
            return COLOR_PAIR(2) | A_BOLD;
        case TUI_R_DIM:
            return A_DIM;
        case TUI_R_ERR:
            return COLOR_PAIR(3) | A_BOLD;
        case TUI_R_OK:
            return COLOR_PAIR(4);
        case TUI_R_WARN:
            return COLOR_PAIR(5);
        case TUI_R_BAR:
            return COLOR_PAIR(4);
        case TUI_R_CMD:
            return A_BOLD;
        case TUI_R_SEL:
            return A_REVERSE;
        default:
            if (r >= TUI_R_SERIES0)
                return COLOR_PAIR(6 + ((int)r - (int)TUI_R_SERIES0) % 6);
            return A_NORMAL;
        }
    }
    switch (r) { /* monochrome / NO_COLOR: attributes only */
    case TUI_R_TITLE:
        return A_REVERSE;
    case TUI_R_HEAD:
    case TUI_R_ERR:
    case TUI_R_CMD:
        return A_BOLD;
    case TUI_R_DIM:
        return t->mono ? A_NORMAL : A_DIM;
    case TUI_R_SEL:
        return A_REVERSE;
    default:
        return A_NORMAL;
    }
}
