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
    "  convert    checkpoint (.safetensors, .ckpt, .pth, .bin) to .safetensors; --list\n"
    "  metrics    image quality and text alignment: features, fid (+ KID), clip-score\n"
    "  serve      HTTP service: A1111-compatible API and a web page\n"
    "  help       this text ('sld help COMMAND' = 'sld COMMAND --help')\n"
    "  --version  print the version\n";

int main(int argc, char **argv)
{
    cli_log_install(getenv("SLD_VERBOSE") ? atoi(getenv("SLD_VERBOSE")) : 0);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *c = argv[1];
    if (!strcmp(c, "--version") || !strcmp(c, "version")) {
        printf("sld %s\n", sld_version());
        return 0;
    }
    if (!strcmp(c, "help")) {
        if (argc < 3) {
            fputs(USAGE, stdout);
            return 0;
        }
        /* sld help i2p generate -> sld i2p generate --help */
        char *av[16] = {argv[0]};
        int n = 1;
        for (int i = 2; i < argc && n < 14; i++)
            av[n++] = argv[i];
        av[n++] = "--help";
        return main(n, av);
    }
    if (!strcmp(c, "generate"))
        return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(c, "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(c, "encode"))
        return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(c, "debug"))
        return cmd_debug(argc - 1, argv + 1);
    if (!strcmp(c, "convert"))
        return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(c, "i2p"))
        return cmd_i2p(argc - 1, argv + 1);
    if (!strcmp(c, "metrics"))
        return cmd_metrics(argc - 1, argv + 1);
    if (!strcmp(c, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "sld: unknown command '%s'\n%s", c, USAGE);
    return 2;
}
