/*
 * json.h — reading config files (config.json, scheduler_config.json, ...)
 * with cJSON, with errors that name the file and the key.
 */
#ifndef SLD_JSON_H
#define SLD_JSON_H

#include "core/core.h"
#include <cjson/cJSON.h>

typedef struct {
    cJSON *root;
    char *path; /* for messages */
} sld_json;

/* Loads and parses a JSON file (at most 64 MiB). Free with sld_json_free. */
sld_status sld_json_load(sld_json *j, const char *path, sld_error *err);
/* Parses a string (name is used in messages). */
sld_status sld_json_parse(sld_json *j, const char *text, const char *name, sld_error *err);
void sld_json_free(sld_json *j);

/* Getters on an object node (NULL node = root). The _req forms fail with
 * SLD_ERR_CONFIG naming file and key when the key is missing or has the wrong
 * type; the _opt forms return def when the key is absent or null, and fail on
 * a wrong type. */
sld_status sld_json_int_req(const sld_json *j, const cJSON *node, const char *key, int *out,
                            sld_error *err);
sld_status sld_json_int_opt(const sld_json *j, const cJSON *node, const char *key, int def,
                            int *out, sld_error *err);
sld_status sld_json_num_req(const sld_json *j, const cJSON *node, const char *key, double *out,
                            sld_error *err);
sld_status sld_json_num_opt(const sld_json *j, const cJSON *node, const char *key, double def,
                            double *out, sld_error *err);
sld_status sld_json_bool_opt(const sld_json *j, const cJSON *node, const char *key, int def,
                             int *out, sld_error *err);
/* Returns a pointer into the tree (valid until sld_json_free). */
sld_status sld_json_str_req(const sld_json *j, const cJSON *node, const char *key,
                            const char **out, sld_error *err);
sld_status sld_json_str_opt(const sld_json *j, const cJSON *node, const char *key,
                            const char *def, const char **out, sld_error *err);
/* An int or a list of ints: fills up to cap values, *n = count (an int gives
 * n = 1). */
sld_status sld_json_ints_opt(const sld_json *j, const cJSON *node, const char *key, int *vals,
                             int cap, int *n, sld_error *err);
/* A list of strings (pointers into the tree). */
sld_status sld_json_strs_req(const sld_json *j, const cJSON *node, const char *key,
                             const char **vals, int cap, int *n, sld_error *err);

#endif /* SLD_JSON_H */
