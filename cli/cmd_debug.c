/* cmd_debug.c — `sld debug` (placeholder until its module lands). */
#include "cli.h"

#include <stdio.h>

int cmd_debug(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sld debug: not built yet\n");
    return 1;
}
