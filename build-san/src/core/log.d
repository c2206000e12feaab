build-san/src/core/log.o: src/core/log.c src/core/core.h include/sld.h
src/core/core.h:
include/sld.h:
