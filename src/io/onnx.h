/*
 * onnx.h — a small reader for ONNX model files (protobuf wire format), enough
 * to run inference graphs like the NudeNet/YOLOv8 export: ModelProto (ir
 * version, opset imports, producer, metadata), GraphProto (nodes,
 * initializers, inputs, outputs; value_info and doc strings are skipped),
 * NodeProto, AttributeProto (float/int/string/tensor and their lists; graph
 * attributes are recorded by type only), TensorProto (raw_data or the typed
 * float_data/int32_data/int64_data/double_data fields) and ValueInfoProto
 * tensor shapes.
 *
 * Invariants: parsing uses a bounded cursor; every varint, tag, length and
 * packed array is checked against the bytes left, element counts are
 * overflow-checked, and errors (SLD_ERR_FORMAT) name the field path and byte
 * offset. Everything returned is copied out of the input buffer (tensor data
 * into 64-byte-aligned little-endian arrays), so the buffer may be freed after
 * parsing. External tensor data and sparse initializers are SLD_ERR_UNSUPPORTED.
 */
#ifndef SLD_ONNX_H
#define SLD_ONNX_H

#include "core/core.h"

/* TensorProto.DataType values we name (others are kept as raw bytes when their
 * element size is known). */
enum {
    SLD_ONNX_UNDEFINED = 0,
    SLD_ONNX_FLOAT = 1,
    SLD_ONNX_UINT8 = 2,
    SLD_ONNX_INT8 = 3,
    SLD_ONNX_UINT16 = 4,
    SLD_ONNX_INT16 = 5,
    SLD_ONNX_INT32 = 6,
    SLD_ONNX_INT64 = 7,
    SLD_ONNX_STRING = 8,
    SLD_ONNX_BOOL = 9,
    SLD_ONNX_FLOAT16 = 10,
    SLD_ONNX_DOUBLE = 11,
    SLD_ONNX_UINT32 = 12,
    SLD_ONNX_UINT64 = 13,
    SLD_ONNX_BFLOAT16 = 16
};

/* AttributeProto.AttributeType */
enum {
    SLD_ONNX_ATTR_FLOAT = 1,
    SLD_ONNX_ATTR_INT = 2,
    SLD_ONNX_ATTR_STRING = 3,
    SLD_ONNX_ATTR_TENSOR = 4,
    SLD_ONNX_ATTR_GRAPH = 5,
    SLD_ONNX_ATTR_FLOATS = 6,
    SLD_ONNX_ATTR_INTS = 7,
    SLD_ONNX_ATTR_STRINGS = 8,
    SLD_ONNX_ATTR_TENSORS = 9,
    SLD_ONNX_ATTR_GRAPHS = 10
};

#define SLD_ONNX_MAX_DIMS 8

typedef struct {
    char *name;
    int dtype;                        /* SLD_ONNX_* */
    int ndim;                         /* 0 = scalar */
    int64_t dims[SLD_ONNX_MAX_DIMS];
    size_t numel;
    size_t nbytes;                    /* numel * element size */
    void *data;                       /* 64-byte aligned, nbytes (never NULL) */
} sld_onnx_tensor;

typedef struct {
    char *name;
    int type;                         /* SLD_ONNX_ATTR_*; inferred from the fields if absent */
    float f;
    int64_t i;
    char *s;                          /* NUL-terminated copy of the bytes */
    size_t s_len;
    sld_onnx_tensor *t;               /* TENSOR */
    float *floats;                    /* FLOATS */
    int64_t *ints;                    /* INTS */
    int n_floats, n_ints, n_strings, n_tensors, n_graphs; /* lists (strings/tensors/graphs counted only) */
} sld_onnx_attr;

typedef struct {
    char *name, *op_type, *domain;    /* never NULL ("" when absent) */
    char **inputs;                    /* "" = optional input omitted */
    char **outputs;
    sld_onnx_attr *attrs;
    int n_inputs, n_outputs, n_attrs;
} sld_onnx_node;

typedef struct {
    char *name;
    int elem_type;                    /* 0 when the type is not a tensor type */
    int ndim;                         /* -1 when no shape is given */
    int64_t dims[SLD_ONNX_MAX_DIMS];  /* -1 for a symbolic or unknown dimension */
} sld_onnx_value_info;

typedef struct {
    char *key, *value;
} sld_onnx_meta;

typedef struct {
    int64_t ir_version;
    int64_t opset;                    /* version of the default domain ("" or "ai.onnx"), 0 if none */
    char *producer_name, *producer_version, *graph_name;
    sld_onnx_node *nodes;
    sld_onnx_tensor *inits;
    sld_onnx_value_info *inputs, *outputs;
    sld_onnx_meta *meta;
    int n_nodes, n_inits, n_inputs, n_outputs, n_meta;
} sld_onnx_model;

/* Parses a serialized ModelProto. name is used in messages (file path).
 * *out is freed with sld_onnx_free. Errors: SLD_ERR_FORMAT, SLD_ERR_UNSUPPORTED,
 * SLD_ERR_NOMEM. */
sld_status sld_onnx_parse(const uint8_t *buf, size_t len, const char *name, sld_onnx_model **out,
                          sld_error *err);
/* Reads path (up to 2 GiB) and parses it. Errors as above plus SLD_ERR_IO. */
sld_status sld_onnx_load(const char *path, sld_onnx_model **out, sld_error *err);
void sld_onnx_free(sld_onnx_model *m); /* NULL is a no-op */

/* Attribute by name, or NULL. */
const sld_onnx_attr *sld_onnx_node_attr(const sld_onnx_node *n, const char *name);
/* Element size in bytes of a data type, 0 if unknown or variable (STRING). */
size_t sld_onnx_dtype_size(int dtype);
/* Static name ("FLOAT", "INT64", ...; "?" when unknown). */
const char *sld_onnx_dtype_name(int dtype);

#endif /* SLD_ONNX_H */
