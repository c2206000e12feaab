/* cmd_i2p.c — `sld i2p` (placeholder until its module lands). */
#include "cli.h"

#include <stdio.h>

int cmd_i2p(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sld i2p: not built yet\n");
    return 1;
}
