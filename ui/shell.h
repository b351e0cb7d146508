/*
 * ui/shell.h: the interactive ncurses + readline shell of reclab.
 *
 *     rlab_app *app = rlab_app_open(&opts, &err);
 *     int rc = rlab_shell_run(app);   // returns when the user quits
 *     rlab_app_close(app);
 *
 * The shell takes over the terminal (stdin/stdout must be a tty) until the user quits
 * (`quit`, Ctrl-D on an empty line). While it runs, stdout and stderr are redirected into
 * its log view, the app's event callback and the rlab_log sink point at the shell, and the
 * host's progress interval is lowered; all are restored before it returns. The app stays
 * owned by the caller. Returns 0, or 1 when the terminal could not be set up (a message is
 * then printed on stderr).
 */
#ifndef RLAB_UI_SHELL_H
#define RLAB_UI_SHELL_H

#include "app.h"

int rlab_shell_run(rlab_app *app);

/* Ask the next rlab_shell_run to generate the demo world (dataset "demo") in the
 * background after its first frame, for an app opened with no_demo = 1 so that start-up
 * does not wait for it. Default 0 (the app registered it, or the user asked for none). */
void rlab_shell_set_demo(int load_in_background);

#endif /* RLAB_UI_SHELL_H */
