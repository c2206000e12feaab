build-san/cli/main.o: cli/main.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
