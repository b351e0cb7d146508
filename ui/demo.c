/* The batch demo workflow: what exists of reclab so far, run end to end with results. */
#include "demo.h"

#include "base/base.h"

int rlab_demo_run(FILE *out)
{
    fprintf(out, "reclab %s demo\n", rlab_version());
    return RLAB_OK;
}
