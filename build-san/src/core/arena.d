build-san/src/core/arena.o: src/core/arena.c src/core/core.h \
 include/sld.h
src/core/core.h:
include/sld.h:
