/* cmd_tokenize.c — `sld tokenize` (placeholder until its module lands). */
#include "cli.h"

#include <stdio.h>

int cmd_tokenize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "sld tokenize: not built yet\n");
    return 1;
}
