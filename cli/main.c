/* main.c — the `sld` command: dispatches to subcommands (cmd_*.c); the
 * helpers they share live in util.c. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: sld <command> [options]\n"
    "commands:\n"
    "  generate   text to image with Safe Latent Diffusion (--help for options)\n"
    "  tokenize   print CLIP token ids of a prompt as JSON\n"
    "  encode     write a prompt's text embedding (last_hidden_state)\n"
    "  debug      run one network on tensors, or make a random full-size model\n"
    "  i2p        I2P test bed: generate, eval, report\n"
    "  serve      HTTP service: A1111-compatible API and a web page\n";

int main(int argc, char **argv)
{
    cli_log_install(getenv("SLD_VERBOSE") ? atoi(getenv("SLD_VERBOSE")) : 0);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (!strcmp(c, "generate"))
        return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "encode"))
        return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(c, "debug"))
        return cmd_debug(argc - 1, argv + 1);
    if (!strcmp(c, "i2p"))
        return cmd_i2p(argc - 1, argv + 1);
    if (!strcmp(c, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "sld: unknown command '%s'\n%s", c, USAGE);
    return 2;
}
