/*
 * world_export DIR [NAME]: generate the built-in demo world and write it as RecBole atomic
 * files DIR/NAME.{inter,item,user,net} (NAME defaults to "demo"), then print its checksum.
 * The same bytes every run on the same machine (see data/README.md).
 */
#include "data/world.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DIR [NAME]\n", argv[0]);
        return 2;
    }
    rlab_err err = {0};
    rlab_world *w;
    rlab_dataset *ds;
    if (rlab_world_demo(&w, &ds, &err) != RLAB_OK ||
        rlab_world_write_recbole(w, ds, argv[1], argc > 2 ? argv[2] : "demo", &err) != RLAB_OK) {
        fprintf(stderr, "world_export: %s\n", err.msg);
        return 1;
    }
    printf("%d users, %d items, %zu interactions, checksum 0x%016llx\n",
           rlab_vocab_size(&ds->users), rlab_vocab_size(&ds->items), ds->inter.n,
           (unsigned long long)rlab_world_checksum(w, ds));
    rlab_world_free(w);
    rlab_dataset_free(ds);
    return 0;
}
