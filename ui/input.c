/*
 * ui/input.c: keys and the command line (STYLE.md "Readline + ncurses recipe").
 *
 * ncurses owns the terminal; readline only edits a buffer through its callback interface.
 * Keys are read with wgetch (no keypad: readline needs the raw escape sequences) and
 * classified byte by byte: UI keys (F1-F7, PgUp/PgDn, Alt-1..4, from a small prefix table
 * plus the terminal's terminfo strings) act on the views; Ctrl-C cancels the running job or
 * Lua chunk, or clears the line; Ctrl-L redraws; Ctrl-Z and Ctrl-\ are ignored; everything
 * else is queued for readline, which reads it through rl_getc_function. Readline calls us
 * back to redisplay (we draw rl_display_prompt + rl_line_buffer ourselves, scrolling
 * horizontally to keep the cursor visible), to complete (candidates from the host and the
 * shell's own commands) and to list matches (drawn in the main pane, never printed).
 * Readline's streams point at /dev/null so no code path of it can write over the screen.
 */
#include "tui.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

static tui *g_t;                /* readline's callbacks have no user data */
static unsigned char g_q[4096]; /* bytes for readline */
static int g_qh, g_qn;
static unsigned char g_hold[32]; /* an escape sequence that may still grow */
static int g_nhold;
static double g_hold_at;
static FILE *g_null;
static char g_hist[1024];
static char **g_cands; /* candidates of the current completion */
static int g_ci;
static const char g_prompt[] = "reclab> ";

static const char *cur_prompt(const tui *t) { return t && t->talk[0] ? t->talk_prompt : g_prompt; }

void tui_talk_set(tui *t, const char *prefix)
{
    int was = t->talk[0] != 0;
    if (!prefix || !*prefix) {
        t->talk[0] = '\0';
        if (was)
            tui_log_add(t, TUI_K_INFO, "back to commands");
    } else {
        snprintf(t->talk, sizeof t->talk, "%s", prefix);
        /* the prompt names the command and what it continues: "crs.chat session=3 > " */
        char head[sizeof t->talk];
        snprintf(head, sizeof head, "%s", prefix);
        size_t n = strlen(head);
        if (n > 0 && head[n - 1] == '=') /* drop the trailing text= */
            while (n > 0 && head[n - 1] != ' ' && head[n - 1] != '\t')
                n--;
        while (n > 0 && (head[n - 1] == ' ' || head[n - 1] == '\t'))
            n--;
        head[n] = '\0';
        snprintf(t->talk_prompt, sizeof t->talk_prompt, "%.50s> ", head);
        if (!was)
            tui_log_addf(t, TUI_K_INFO,
                         "talking: each line you type continues `%s`; /COMMAND runs a "
                         "command, an empty line or Ctrl-C returns to reclab>",
                         head);
    }
    rl_set_prompt(cur_prompt(t));
    t->dirty |= TUI_D_CMD;
}
static char g_breaks[] = " \t";

/* ---- the UI key table ---------------------------------------------------------------- */
enum {
    A_HELP = 1,
    A_LOG,
    A_TABLE,
    A_CHART,
    A_NEXT_VIEW,
    A_SORT_NEXT,
    A_SORT_FLIP,
    A_PGUP,
    A_PGDN,
    /* horizontal scrolling of the table view; the plain keys only on an empty command line
     * in the table view (else they go to readline: cursor moves) */
    A_COL_LEFT,
    A_COL_RIGHT,
    A_COL_HOME,
    A_COL_END,
    A_COL_SLEFT, /* Shift-Left / Shift-Right: in the table view, whatever the line holds */
    A_COL_SRIGHT,
};

typedef struct ukey {
    char seq[16];
    int action;
} ukey;

static ukey g_keys[64];
static int g_nkeys;

static void key_add(const char *seq, int action)
{
    if (!seq || (intptr_t)seq == -1 || seq[0] != '\033' || strlen(seq) >= sizeof g_keys[0].seq ||
        g_nkeys >= 64)
        return;
    for (int i = 0; i < g_nkeys; i++)
        if (!strcmp(g_keys[i].seq, seq))
            return;
    snprintf(g_keys[g_nkeys].seq, sizeof g_keys[0].seq, "%s", seq);
    g_keys[g_nkeys++].action = action;
}

static void keys_init(void)
{
    static const struct {
        const char *ti, *seqs[4];
        int action;
    } tab[] = {
        {"kf1", {"\033OP", "\033[11~", "\033[[A", NULL}, A_HELP},
        {"kf2", {"\033OQ", "\033[12~", "\033[[B", NULL}, A_LOG},
        {"kf3", {"\033OR", "\033[13~", "\033[[C", NULL}, A_TABLE},
        {"kf4", {"\033OS", "\033[14~", "\033[[D", NULL}, A_CHART},
        {"kf5", {"\033[15~", "\033[[E", NULL, NULL}, A_NEXT_VIEW},
        {"kf6", {"\033[17~", NULL, NULL, NULL}, A_SORT_NEXT},
        {"kf7", {"\033[18~", NULL, NULL, NULL}, A_SORT_FLIP},
        {"kpp", {"\033[5~", NULL, NULL, NULL}, A_PGUP},
        {"knp", {"\033[6~", NULL, NULL, NULL}, A_PGDN},
        {"kcub1", {"\033[D", "\033OD", NULL, NULL}, A_COL_LEFT},
        {"kcuf1", {"\033[C", "\033OC", NULL, NULL}, A_COL_RIGHT},
        {"khome", {"\033[H", "\033OH", "\033[1~", "\033[7~"}, A_COL_HOME},
        {"kend", {"\033[F", "\033OF", "\033[4~", "\033[8~"}, A_COL_END},
        {"kLFT", {"\033[1;2D", NULL, NULL, NULL}, A_COL_SLEFT},
        {"kRIT", {"\033[1;2C", NULL, NULL, NULL}, A_COL_SRIGHT},
        {NULL, {"\0331", NULL, NULL, NULL}, A_LOG},
        {NULL, {"\0332", NULL, NULL, NULL}, A_TABLE},
        {NULL, {"\0333", NULL, NULL, NULL}, A_CHART},
        {NULL, {"\0334", NULL, NULL, NULL}, A_NEXT_VIEW},
    };
    g_nkeys = 0;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (tab[i].ti)
            key_add(tigetstr(tab[i].ti), tab[i].action);
        for (int k = 0; k < 4 && tab[i].seqs[k]; k++)
            key_add(tab[i].seqs[k], tab[i].action);
    }
}

/* Length of the table entry matching the start of b (0 none); *partial = 1 when b[0..n) is
 * a proper prefix of some entry. */
static int key_match(const unsigned char *b, int n, int *action, int *partial)
{
    *partial = 0;
    for (int i = 0; i < g_nkeys; i++) {
        int l = (int)strlen(g_keys[i].seq);
        if (n >= l && !memcmp(b, g_keys[i].seq, (size_t)l)) {
            *action = g_keys[i].action;
            return l;
        }
        if (n < l && !memcmp(b, g_keys[i].seq, (size_t)n))
            *partial = 1;
    }
    return 0;
}

static void ui_action(tui *t, int action)
{
    int page = t->body_h / 2 > 1 ? t->body_h / 2 : 1;
    switch (action) {
    case A_HELP:
        tui_dispatch(t, "help");
        break;
    case A_LOG:
        t->view = TUI_VIEW_LOG;
        break;
    case A_TABLE:
        t->view = TUI_VIEW_TABLE;
        if (t->table.ncol == 0)
            tui_table_runs(t, NULL, NULL);
        break;
    case A_CHART:
        t->view = TUI_VIEW_CHART;
        break;
    case A_NEXT_VIEW:
        if (t->npviews == 0) {
            tui_log_add(t, TUI_K_INFO, "no plugin views are loaded");
            break;
        }
        if (t->view == TUI_VIEW_PLUGIN)
            t->pview = (t->pview + 1) % t->npviews;
        else
            t->view = TUI_VIEW_PLUGIN;
        break;
    case A_SORT_NEXT:
        if (t->table.ncol > 0) {
            t->table.sort_col = (t->table.sort_col + 1) % t->table.ncol;
            t->table.sort_desc = 1;
            tui_table_sort(&t->table);
            t->view = TUI_VIEW_TABLE;
        }
        break;
    case A_SORT_FLIP:
        if (t->table.sort_col >= 0) {
            t->table.sort_desc = !t->table.sort_desc;
            tui_table_sort(&t->table);
        }
        break;
    case A_COL_LEFT:
    case A_COL_SLEFT:
        tui_table_hscroll(&t->table, -1);
        break;
    case A_COL_RIGHT:
    case A_COL_SRIGHT:
        tui_table_hscroll(&t->table, 1);
        break;
    case A_COL_HOME:
        tui_table_hscroll(&t->table, -2);
        break;
    case A_COL_END:
        tui_table_hscroll(&t->table, 2);
        break;
    case A_PGUP:
        if (t->view == TUI_VIEW_TABLE)
            t->table.top = t->table.top > page ? t->table.top - page : 0;
        else
            t->log.scroll += page;
        break;
    case A_PGDN:
        if (t->view == TUI_VIEW_TABLE)
            t->table.top += page;
        else
            t->log.scroll = t->log.scroll > page ? t->log.scroll - page : 0;
        break;
    default:
        break;
    }
    t->dirty |= TUI_D_MAIN | TUI_D_STATUS;
}

/* ---- readline callbacks ------------------------------------------------------------ */

static int getc_cb(FILE *f)
{
    (void)f;
    if (g_qn > 0) {
        int c = g_q[g_qh];
        g_qh = (g_qh + 1) % (int)sizeof g_q;
        g_qn--;
        return c;
    }
    /* readline wants one more byte of a sequence that has not arrived: wait briefly */
    if (g_t && g_t->w_cmd) {
        wtimeout(g_t->w_cmd, 100);
        int c = wgetch(g_t->w_cmd);
        nodelay(g_t->w_cmd, TRUE);
        if (c != ERR && c >= 0 && c < 256)
            return c;
    }
    return 7; /* Ctrl-G: abort the incomplete sequence */
}

static int avail_cb(void) { return g_qn > 0; }

static void redisplay_cb(void)
{
    if (g_t)
        g_t->dirty |= TUI_D_CMD;
}

static int history_ready;

static void on_line(char *line)
{
    tui *t = g_t;
    if (!line) { /* Ctrl-D on an empty line */
        if (rlab_host_busy(t->host) || atomic_load(&t->task_busy))
            tui_log_add(t, TUI_K_WARN, "work is running: `quit` cancels it and leaves");
        else
            t->quit = 1;
        return;
    }
    tui_comp_clear(t);
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (t->talk[0]) { /* talk mode: readline's history keeps what was said */
        if (*p) {
            HIST_ENTRY *last =
                history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
            if (!last || strcmp(last->line, line))
                add_history(line);
        }
        tui_talk_line(t, p);
        free(line);
        t->dirty |= TUI_D_CMD;
        return;
    }
    if (*p) {
        HIST_ENTRY *last =
            history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
        if (!last || strcmp(last->line, line)) {
            add_history(line);
            if (history_ready && g_hist[0])
                append_history(1, g_hist);
        }
        if (t->db) {
            rlab_err err = {0};
            rlab_db_history_add(t->db, line, &err);
        }
        tui_dispatch(t, line);
    }
    free(line);
    t->dirty |= TUI_D_CMD;
}

static char *gen_cb(const char *text, int state)
{
    if (!state)
        g_ci = 0;
    size_t n = strlen(text);
    while (g_cands && g_cands[g_ci]) {
        const char *c = g_cands[g_ci++];
        if (!strncmp(c, text, n))
            return strdup(c); /* readline frees with free() */
    }
    return NULL;
}

static char **complete_cb(const char *text, int start, int end)
{
    (void)start;
    rl_attempted_completion_over = 1; /* no filename fallback: paths come from tui_complete */
    rlab_strv_free(g_cands);
    g_cands = NULL;
    char *line = strndup(rl_line_buffer, (size_t)end);
    if (!line)
        return NULL;
    g_cands = tui_complete(g_t, line);
    free(line);
    char **m = rl_completion_matches(text, gen_cb);
    if (m && m[0] && !m[1]) {
        size_t l = strlen(m[0]);
        if (l && (m[0][l - 1] == '=' || m[0][l - 1] == '/'))
            rl_completion_suppress_append = 1;
    }
    return m;
}

static void display_cb(char **matches, int num, int max_length)
{
    (void)max_length;
    tui *t = g_t;
    tui_comp_clear(t);
    t->comp = rlab_calloc((size_t)(num > 0 ? num : 1), sizeof *t->comp);
    if (!t->comp)
        return;
    for (int i = 1; i <= num; i++) {
        t->comp[t->ncomp] = rlab_strdup(matches[i]);
        if (t->comp[t->ncomp])
            t->ncomp++;
    }
    t->dirty |= TUI_D_MAIN | TUI_D_CMD;
}

/* ---- history ------------------------------------------------------------------------- */

static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int hist_from_db(const char *line, void *ud)
{
    (void)ud;
    add_history(line);
    return 0;
}

static void history_open(tui *t)
{
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        snprintf(g_hist, sizeof g_hist, "%s/reclab/history", xdg);
    else if (home && *home)
        snprintf(g_hist, sizeof g_hist, "%s/.local/state/reclab/history", home);
    else
        g_hist[0] = 0;
    using_history();
    stifle_history(2000);
    if (!g_hist[0])
        return;
    if (mkdirs(g_hist)) {
        tui_log_addf(t, TUI_K_WARN, "history not saved: cannot create the folder of %s", g_hist);
        g_hist[0] = 0;
        return;
    }
    if (read_history(g_hist) != 0) {
        /* first start: seed from the workspace's own history, then create the file */
        if (t->db) {
            rlab_err err = {0};
            rlab_db_history_each(t->db, 500, hist_from_db, NULL, &err);
        }
        if (write_history(g_hist) != 0) {
            tui_log_addf(t, TUI_K_WARN, "history not saved: cannot write %s", g_hist);
            g_hist[0] = 0;
            return;
        }
    }
    history_ready = 1;
}

/* ---- public -------------------------------------------------------------------------- */

int tui_input_open(tui *t, rlab_err *err)
{
    g_t = t;
    g_qh = g_qn = g_nhold = 0;
    keys_init();
    g_null = fopen("/dev/null", "r+");
    if (!g_null)
        return rlab_errf(err, RLAB_EIO, "cannot open /dev/null: %s", strerror(errno));
    rl_readline_name = "reclab";
    rl_change_environment = 0;
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_instream = g_null;
    rl_outstream = g_null;
    rl_getc_function = getc_cb;
    rl_input_available_hook = avail_cb;
    rl_redisplay_function = redisplay_cb;
    rl_attempted_completion_function = complete_cb;
    rl_completion_display_matches_hook = display_cb;
    rl_completer_word_break_characters = g_breaks;
    rl_basic_word_break_characters = g_breaks;
    rl_completer_quote_characters = NULL;
    rl_variable_bind("bell-style", "none");
    rl_variable_bind("enable-bracketed-paste", "off");
    history_open(t);
    rl_callback_handler_install(g_prompt, on_line);
    /* after ~/.inputrc: our word breaks must win (host completion works on whole tokens) */
    rl_completer_word_break_characters = g_breaks;
    t->dirty |= TUI_D_CMD;
    return RLAB_OK;
}

void tui_input_close(tui *t)
{
    (void)t;
    rl_callback_handler_remove();
    if (history_ready && g_hist[0])
        history_truncate_file(g_hist, 2000);
    rlab_strv_free(g_cands);
    g_cands = NULL;
    if (g_null) {
        rl_instream = rl_outstream = NULL;
        fclose(g_null);
        g_null = NULL;
    }
    g_t = NULL;
}

static void to_readline(unsigned char c)
{
    if (g_qn >= (int)sizeof g_q)
        return; /* a paste larger than the queue: drop the excess */
    g_q[(g_qh + g_qn) % (int)sizeof g_q] = c;
    g_qn++;
}

static void flush_readline(tui *t)
{
    while (g_qn > 0 && !t->quit)
        rl_callback_read_char();
    g_qn = 0;
}

void tui_on_ctrl_c(tui *t)
{
    int acted = 0;
    if (atomic_load(&t->task_busy)) {
        rlab_app_lua_interrupt(t->app);
        tui_log_add(t, TUI_K_WARN, "interrupting the Lua chunk...");
        acted = 1;
    }
    tui_job *j = tui_newest_job(t);
    if (j) {
        if (rlab_host_cancel(t->host, j->id) == RLAB_OK)
            tui_log_addf(t, TUI_K_WARN, "cancelling job #%d %s...", j->id, j->cmd);
        acted = 1;
    }
    if (!acted) { /* an idle line: clear it, whatever state readline was in */
        int rl_end_before = rl_end;
        rl_callback_sigcleanup();
        rl_replace_line("", 0);
        rl_point = rl_end = 0;
        rl_mark = 0;
        if (t->talk[0] && !rl_end_before) /* Ctrl-C on an empty line leaves talk mode */
            tui_talk_set(t, NULL);
        rl_set_prompt(cur_prompt(t));
        tui_comp_clear(t);
    }
    t->dirty |= TUI_D_CMD | TUI_D_STATUS;
}

int tui_input_timeout(tui *t)
{
    (void)t;
    if (!g_nhold)
        return -1;
    double left = 0.03 - (rlab_now() - g_hold_at);
    return left <= 0 ? 0 : (int)(left * 1000) + 1;
}

int tui_input_drain(tui *t)
{
    unsigned char buf[1024];
    int n = 0, any = 0, c;
    memcpy(buf, g_hold, (size_t)g_nhold);
    n = g_nhold;
    int had_hold = g_nhold;
    g_nhold = 0;
    while (n < (int)sizeof buf && (c = wgetch(t->w_cmd)) != ERR) {
        if (c == KEY_RESIZE) {
            tui_screen_layout(t);
            any = 1;
            continue;
        }
        if (c < 0 || c > 255)
            continue;
        buf[n++] = (unsigned char)c;
    }
    int timed_out = had_hold && n == had_hold && tui_input_timeout(t) == 0;
    int i = 0;
    while (i < n && !t->quit) {
        unsigned char b = buf[i];
        if (b == 0x1b) {
            int action = 0, partial = 0;
            int m = key_match(buf + i, n - i, &action, &partial);
            if (m > 0 && action >= A_COL_LEFT &&
                (t->view != TUI_VIEW_TABLE || (action <= A_COL_END && rl_end > 0))) {
                /* not the table's: the line's cursor keys */
                for (int k = 0; k < m; k++)
                    to_readline(buf[i + k]);
                i += m;
                any = 1;
                continue;
            }
            if (m > 0) {
                flush_readline(t);
                tui_comp_clear(t);
                ui_action(t, action);
                i += m;
                any = 1;
                continue;
            }
            if (partial && !timed_out && n - i < (int)sizeof g_hold) {
                memcpy(g_hold, buf + i, (size_t)(n - i));
                g_nhold = n - i;
                g_hold_at = had_hold ? g_hold_at : rlab_now();
                break;
            }
        }
        any = 1;
        if (b == 0x03) {
            flush_readline(t);
            tui_on_ctrl_c(t);
        } else if (b == 0x0c) {
            flush_readline(t);
            tui_screen_layout(t);
        } else if (b == 0x1a || b == 0x1c) {
            /* Ctrl-Z, Ctrl-\: ignored (raw mode: no signal is raised) */
        } else {
            if (t->comp && b != '\t')
                tui_comp_clear(t);
            to_readline(b);
        }
        i++;
    }
    flush_readline(t);
    return any;
}

/* Draw from display column `off` of s into the command window. */
static void put_from(WINDOW *w, const char *s, int off, int maxw)
{
    size_t skip = tui_fit(s, off);
    int sw = tui_width(s, skip);
    int x = 0;
    if (sw < off) { /* a wide character straddles the edge */
        size_t l = 1;
        while (s[skip + l] && ((unsigned char)s[skip + l] & 0xc0) == 0x80)
            l++;
        skip += l;
        x = tui_width(s, skip) - off;
        for (int i = 0; i < x; i++)
            mvwaddch(w, 0, i, ' ');
    }
    tui_put(w, 0, x, s + skip, maxw - x, A_NORMAL);
}

void tui_input_draw(tui *t)
{
    WINDOW *w = t->w_cmd;
    werase(w);
    const char *prompt = rl_display_prompt ? rl_display_prompt : cur_prompt(t);
    const char *line = rl_line_buffer ? rl_line_buffer : "";
    size_t pl = strlen(prompt), ll = strlen(line);
    char stack[512];
    char *all = pl + ll + 1 <= sizeof stack ? stack : rlab_malloc(pl + ll + 1);
    if (!all)
        return;
    memcpy(all, prompt, pl);
    memcpy(all + pl, line, ll + 1);
    int point = rl_point < 0 ? 0 : rl_point > (int)ll ? (int)ll : rl_point;
    int cur = tui_width(all, pl + (size_t)point);
    int W = t->W > 1 ? t->W : 1;
    int off = 0;
    if (cur >= W - 1) { /* scroll in steps of a third of the width */
        int step = W / 3 > 0 ? W / 3 : 1;
        off = ((cur - (W - 1)) / step + 1) * step;
    }
    put_from(w, all, off, W);
    if (off == 0) /* the prompt in bold */
        tui_put(w, 0, 0, prompt, W, tui_attr(t, TUI_R_CMD));
    if (off > 0)
        mvwaddch(w, 0, 0, '<' | A_BOLD);
    if (all != stack)
        rlab_free(all);
    wmove(w, 0, cur - off < W ? cur - off : W - 1);
}
