build-san/src/core/err.o: src/core/err.c src/core/core.h include/sld.h
src/core/core.h:
include/sld.h:
