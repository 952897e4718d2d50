#ifndef CCURL_HELPERS_H
#define CCURL_HELPERS_H
/* Typed, non-variadic wrappers: Swift cannot call curl's variadic setopt/getinfo functions. */
#include <curl/curl.h>

CURLcode wr_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode wr_easy_setopt_offt(CURL *handle, CURLoption option, curl_off_t value);
CURLcode wr_easy_setopt_ptr(CURL *handle, CURLoption option, const void *value);
CURLcode wr_easy_setopt_write(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode wr_easy_setopt_header(CURL *handle, size_t (*callback)(char *, size_t, size_t, void *));
CURLcode wr_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode wr_easy_getinfo_ptr(CURL *handle, CURLINFO info, void **value);
CURLMcode wr_multi_setopt_long(CURLM *multi, CURLMoption option, long value);

#endif
