// OpenSSL's libcrypto, for SHA-256 only (Sources/Surrogate/Support/SHA256.swift). libpq links it
// already, so it costs the build nothing; the EVP interface is the one OpenSSL 3 keeps.
#include <openssl/evp.h>
