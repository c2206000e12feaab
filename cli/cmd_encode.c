/* cmd_encode.c — `sld encode` (placeholder until its module lands). */
#include "cli.h"

#include <stdio.h>

int cmd_encode(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sld encode: not built yet\n");
    return 1;
}
