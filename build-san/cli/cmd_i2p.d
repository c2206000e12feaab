build-san/cli/cmd_i2p.o: cli/cmd_i2p.c cli/cli.h include/sld.h
cli/cli.h:
include/sld.h:
