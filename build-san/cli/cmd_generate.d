build-san/cli/cmd_generate.o: cli/cmd_generate.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
