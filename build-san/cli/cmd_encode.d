build-san/cli/cmd_encode.o: cli/cmd_encode.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
