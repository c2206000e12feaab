build-san/src/io/safetensors.o: src/io/safetensors.c src/io/safetensors.h \
 src/core/core.h include/sld.h
src/io/safetensors.h:
src/core/core.h:
include/sld.h:
