build-san/src/core/sys.o: src/core/sys.c src/core/core.h include/sld.h
src/core/core.h:
include/sld.h:
