build-san/src/io/json.o: src/io/json.c src/io/json.h src/core/core.h \
 include/sld.h
src/io/json.h:
src/core/core.h:
include/sld.h:
