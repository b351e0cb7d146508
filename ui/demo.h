/* ui/demo.h: the demo workflow run by `reclab demo` and by `reclab` without a terminal. */
#ifndef RLAB_UI_DEMO_H
#define RLAB_UI_DEMO_H

#include "app.h"

/* Run the demo workflow (Lua, in the app's session) printing results to stdout. Returns an
 * RLAB_ status; the message is in err. */
int rlab_demo_run(rlab_app *app, rlab_err *err);

#endif
