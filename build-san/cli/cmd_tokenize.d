build-san/cli/cmd_tokenize.o: cli/cmd_tokenize.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
