build-san/src/model/weights.o: src/model/weights.c src/model/weights.h \
 src/io/safetensors.h src/core/core.h include/sld.h
src/model/weights.h:
src/io/safetensors.h:
src/core/core.h:
include/sld.h:
