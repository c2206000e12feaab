/* cmd_generate.c — `sld generate` (placeholder until its module lands). */
#include "cli.h"

#include <stdio.h>

int cmd_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sld generate: not built yet\n");
    return 1;
}
