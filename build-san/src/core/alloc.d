build-san/src/core/alloc.o: src/core/alloc.c src/core/core.h \
 include/sld.h
src/core/core.h:
include/sld.h:
