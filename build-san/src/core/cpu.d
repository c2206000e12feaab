build-san/src/core/cpu.o: src/core/cpu.c src/core/core.h include/sld.h
src/core/core.h:
include/sld.h:
