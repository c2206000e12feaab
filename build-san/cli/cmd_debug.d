build-san/cli/cmd_debug.o: cli/cmd_debug.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
