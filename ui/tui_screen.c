/*
 * ui/tui_screen.c: the terminal and the layout. Opens ncurses on a duplicate of the
 * terminal's file descriptors and points fds 1 and 2 at a pipe read into the log, so that
 * no stray printf or library message can write over the screen. Lays the panes out (title,
 * sidebar, main pane, status line, command line) and draws the dirty ones, the command
 * line last so the hardware cursor ends there, with one doupdate per loop iteration.
 */
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void del_windows(tui *t)
{
    WINDOW **ws[] = {&t->w_title, &t->w_side, &t->w_main, &t->w_status, &t->w_cmd};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        if (*ws[i]) {
            delwin(*ws[i]);
            *ws[i] = NULL;
        }
}

int tui_screen_open(tui *t, rlab_err *err)
{
    const char *cs = nl_langinfo(CODESET);
    t->utf8 = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
    t->saved_out = t->saved_err = -1;
    t->out_pipe[0] = t->out_pipe[1] = -1;
    int tty_fd = dup(STDOUT_FILENO);
    if (tty_fd < 0)
        return rlab_errf(err, RLAB_EIO, "dup: %s", strerror(errno));
    fcntl(tty_fd, F_SETFD, FD_CLOEXEC);
    t->tty_out = fdopen(tty_fd, "w");
    if (!t->tty_out) {
        close(tty_fd);
        return rlab_errf(err, RLAB_EIO, "fdopen: %s", strerror(errno));
    }
    t->tty_in = stdin;
    t->scr = newterm(NULL, t->tty_out, t->tty_in);
    if (!t->scr) {
        fclose(t->tty_out);
        t->tty_out = NULL;
        return rlab_errf(err, RLAB_EIO, "cannot initialise the terminal (TERM=%s)",
                         getenv("TERM") ? getenv("TERM") : "");
    }
    set_term(t->scr);
    raw(); /* Ctrl-C arrives as byte 0x03, Ctrl-Z as 0x1a: the shell decides */
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    const char *nc = getenv("NO_COLOR");
    t->mono = !has_colors();
    if (has_colors() && !(nc && *nc)) {
        start_color();
        use_default_colors();
        t->color = 1;
        init_pair(1, COLOR_BLACK, COLOR_CYAN);
        init_pair(2, COLOR_CYAN, -1);
        init_pair(3, COLOR_RED, -1);
        init_pair(4, COLOR_GREEN, -1);
        init_pair(5, COLOR_YELLOW, -1);
        static const short series[] = {COLOR_CYAN,  COLOR_MAGENTA, COLOR_YELLOW,
                                       COLOR_GREEN, COLOR_BLUE,    COLOR_RED};
        for (int i = 0; i < 6; i++)
            init_pair((short)(6 + i), series[i], -1);
    }
    /* From here on, stdout and stderr go to a pipe the loop reads into the log. */
    fflush(stdout);
    fflush(stderr);
    if (pipe(t->out_pipe) == 0) {
        fcntl(t->out_pipe[0], F_SETFL, fcntl(t->out_pipe[0], F_GETFL) | O_NONBLOCK);
        fcntl(t->out_pipe[1], F_SETFL, fcntl(t->out_pipe[1], F_GETFL) | O_NONBLOCK);
        fcntl(t->out_pipe[0], F_SETFD, FD_CLOEXEC);
        fcntl(t->out_pipe[1], F_SETFD, FD_CLOEXEC);
        t->saved_out = dup(STDOUT_FILENO);
        t->saved_err = dup(STDERR_FILENO);
        dup2(t->out_pipe[1], STDOUT_FILENO);
        dup2(t->out_pipe[1], STDERR_FILENO);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    tui_screen_layout(t);
    return RLAB_OK;
}

void tui_screen_close(tui *t)
{
    del_windows(t);
    if (t->scr) {
        if (!isendwin())
            endwin();
        delscreen(t->scr);
        t->scr = NULL;
    }
    fflush(stdout);
    fflush(stderr);
    if (t->saved_out >= 0) {
        dup2(t->saved_out, STDOUT_FILENO);
        close(t->saved_out);
        t->saved_out = -1;
    }
    if (t->saved_err >= 0) {
        dup2(t->saved_err, STDERR_FILENO);
        close(t->saved_err);
        t->saved_err = -1;
    }
    for (int i = 0; i < 2; i++)
        if (t->out_pipe[i] >= 0) {
            close(t->out_pipe[i]);
            t->out_pipe[i] = -1;
        }
    if (t->tty_out) {
        fclose(t->tty_out);
        t->tty_out = NULL;
    }
}

void tui_screen_layout(tui *t)
{
    del_windows(t);
    t->W = COLS;
    t->H = LINES;
    t->too_small = t->W < TUI_MIN_W || t->H < TUI_MIN_H;
    int W = t->W < 1 ? 1 : t->W, H = t->H < 4 ? 4 : t->H;
    t->side_cols = t->too_small ? 0 : W >= 110 ? 24 : W >= 90 ? 22 : W >= 70 ? 20 : 0;
    t->body_h = H - 3 > 1 ? H - 3 : 1;
    t->main_x = t->side_cols;
    t->main_w = W - t->side_cols;
    t->w_title = newwin(1, W, 0, 0);
    if (t->side_cols > 0)
        t->w_side = newwin(t->body_h, t->side_cols, 1, 0);
    t->w_main = newwin(t->body_h, t->main_w, 1, t->main_x);
    t->w_status = newwin(1, W, H - 2, 0);
    t->w_cmd = newwin(1, W, H - 1, 0);
    if (t->w_cmd) {
        nodelay(t->w_cmd, TRUE); /* keys are drained until ERR; no keypad: readline decodes */
        keypad(t->w_cmd, FALSE);
    }
    clearok(curscr, TRUE);
    t->dirty = TUI_D_ALL;
}

/* The completion candidates (from readline's display hook), drawn in columns at the bottom
 * of the main pane. Returns the rows used. */
static int draw_completions(tui *t, WINDOW *w, int h, int wd)
{
    if (!t->comp || t->ncomp <= 0 || h < 3)
        return 0;
    int maxw = 1;
    for (int i = 0; i < t->ncomp; i++) {
        int cw = tui_width(t->comp[i], (size_t)-1);
        if (cw > maxw)
            maxw = cw;
    }
    int colw = maxw + 2 > wd ? wd : maxw + 2;
    int ncols = wd / colw > 0 ? wd / colw : 1;
    int rows = (t->ncomp + ncols - 1) / ncols;
    int maxrows = h / 2 > 8 ? 8 : h / 2;
    int more = 0;
    if (rows > maxrows) {
        rows = maxrows;
        more = t->ncomp - (rows * ncols - 1);
    }
    int y0 = h - rows - 1;
    tui_hline(t, w, y0, 0, wd, tui_attr(t, TUI_R_DIM));
    char head[64];
    snprintf(head, sizeof head, " %d completions ", t->ncomp);
    tui_put(w, y0, 2, head, wd - 4, tui_attr(t, TUI_R_HEAD));
    for (int r = 0; r < rows; r++) {
        wmove(w, y0 + 1 + r, 0);
        wclrtoeol(w);
        for (int c = 0; c < ncols; c++) {
            int i = r * ncols + c; /* row-major: reads left to right like `ls -x` */
            if (i >= t->ncomp)
                break;
            if (more > 0 && r == rows - 1 && c == ncols - 1) {
                char m[32];
                snprintf(m, sizeof m, "... %d more", more);
                tui_put(w, y0 + 1 + r, c * colw, m, colw, tui_attr(t, TUI_R_DIM));
                break;
            }
            tui_put(w, y0 + 1 + r, c * colw, t->comp[i], colw - 1, A_NORMAL);
        }
    }
    return rows + 1;
}

static void draw_main(tui *t)
{
    WINDOW *w = t->w_main;
    int h = t->body_h, wd = t->main_w;
    werase(w);
    if (t->view == TUI_VIEW_LOG) {
        tui_view_log(t, w, 0, 0, h, wd);
    } else {
        int logh = h >= 18 ? h / 4 : h >= 12 ? 3 : 0;
        int top = h - logh - (logh ? 1 : 0);
        switch (t->view) {
        case TUI_VIEW_TABLE:
            tui_view_table(t, w, 0, 0, top, wd);
            break;
        case TUI_VIEW_CHART:
            tui_view_chart(t, w, 0, 0, top, wd);
            break;
        case TUI_VIEW_PLUGIN:
            tui_view_plugin(t, w, 0, 0, top, wd);
            break;
        default:
            break;
        }
        if (logh) {
            tui_hline(t, w, top, 0, wd, tui_attr(t, TUI_R_DIM));
            tui_view_log(t, w, top + 1, 0, logh, wd);
        }
    }
    draw_completions(t, w, h, wd);
}

void tui_screen_draw(tui *t)
{
    if (t->too_small) {
        if (t->dirty) {
            werase(stdscr);
            char msg[96];
            snprintf(msg, sizeof msg, "reclab: terminal %dx%d is too small (need %dx%d)", t->W,
                     t->H, TUI_MIN_W, TUI_MIN_H);
            tui_put(stdscr, 0, 0, msg, t->W, A_BOLD);
            wnoutrefresh(stdscr);
        }
    } else {
        if ((t->dirty & TUI_D_TITLE) && t->w_title) {
            werase(t->w_title);
            tui_view_title(t, t->w_title, t->W);
            wnoutrefresh(t->w_title);
        }
        if ((t->dirty & TUI_D_SIDE) && t->w_side) {
            werase(t->w_side);
            tui_view_sidebar(t, t->w_side, t->body_h, t->side_cols);
            wnoutrefresh(t->w_side);
        }
        if ((t->dirty & TUI_D_MAIN) && t->w_main) {
            draw_main(t);
            wnoutrefresh(t->w_main);
        }
        if ((t->dirty & TUI_D_STATUS) && t->w_status) {
            werase(t->w_status);
            tui_view_status(t, t->w_status, t->W);
            wnoutrefresh(t->w_status);
        }
    }
    if (t->w_cmd) {
        tui_input_draw(t);
        wnoutrefresh(t->w_cmd);
    }
    t->dirty = 0;
    doupdate();
}
