#!/bin/sh
# Regenerates the signed-URL test vectors (vectors.txt) with the openssl CLI, and the test keys
# when they are missing (--new-keys: always). The keys are for tests only. ECDSA signatures are
# randomised, so a rerun changes their lines; every version verifies.
# Used by tests/unit/access_{cloudfront,secure_link,hmac_url}_test.cpp.
set -eu
cd "$(dirname "$0")"
repo=$(cd ../../.. && pwd)

if [ "${1:-}" = "--new-keys" ] || [ ! -f rsa_private.pem ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa_private.pem 2>/dev/null
  openssl pkey -in rsa_private.pem -pubout -out rsa_public.pem
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec_private.pem
  openssl pkey -in ec_private.pem -pubout -out ec_public.pem
  # Keys the CloudFront factory must refuse.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null |
    openssl pkey -pubout -out rsa1024_public.pem
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 | openssl pkey -pubout -out ec384_public.pem
  openssl genpkey -algorithm ED25519 | openssl pkey -pubout -out ed25519_public.pem
  printf -- '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n' > garbage.pem
  # HMAC secrets: two good ones (trailing newline, as `openssl rand -hex` writes) and a short one.
  openssl rand -hex 32 > hmac_k1.secret
  openssl rand -hex 32 > hmac_k2.secret
  printf 'short-secret\n' > hmac_short.secret
fi

cf_b64() { openssl base64 -A | tr '+=/' '-_~'; }          # CloudFront-safe base64
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }  # base64url, no padding
sign() {  # sign KEY DIGEST < bytes
  openssl dgst "-$2" -sign "$1" -binary | cf_b64
}
canned() {  # canned RESOURCE EXPIRES
  printf '{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":{"AWS:EpochTime":%s}}}]}' "$1" "$2"
}

out=vectors.txt.new
: > "$out"
put() { printf '%s %s\n' "$1" "$2" >> "$out"; }

url='https://lms.example.com/course/1/video.mp4?lang=en'
put canned_rsa_sha1 "$(canned "$url" 2000000000 | sign rsa_private.pem sha1)"
put canned_rsa_sha256 "$(canned "$url" 2000000000 | sign rsa_private.pem sha256)"
put canned_ec_sha1 "$(canned "$url" 2000000000 | sign ec_private.pem sha1)"
put canned_ec_sha256 "$(canned "$url" 2000000000 | sign ec_private.pem sha256)"
put canned_cookie_rsa "$(canned 'https://lms.example.com/course/1/video.mp4' 2000000000 | sign rsa_private.pem sha1)"

custom() {  # custom NAME KEY DIGEST JSON
  put "$1_policy" "$(printf '%s' "$4" | cf_b64)"
  put "$1_sig" "$(printf '%s' "$4" | sign "$2" "$3")"
}
custom custom_ip rsa_private.pem sha1 \
  '{"Statement":[{"Resource":"https://lms.example.com/course/1/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000},"DateGreaterThan":{"AWS:EpochTime":1700000000},"IpAddress":{"AWS:SourceIp":"10.1.0.0/16"}}}]}'
# Whitespace, escapes and key order as a hand-written policy may have them.
custom custom_v6 ec_private.pem sha256 '{ "Statement": [ { "Condition": { "IpAddress": { "AWS:SourceIp": "fd00:1::/32" },
  "DateLessThan": { "AWS:EpochTime": 2000000000 } }, "Resource": "https:\/\/lms.example.com\/c?urse\/*\/index.html" } ] }'
custom custom_bad_cidr rsa_private.pem sha1 \
  '{"Statement":[{"Resource":"https://lms.example.com/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000},"IpAddress":{"AWS:SourceIp":"10.1.0.0/33"}}}]}'
custom custom_extra_key rsa_private.pem sha1 \
  '{"Statement":[{"Resource":"https://lms.example.com/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000}},"Effect":"Allow"}]}'
custom custom_two_statements rsa_private.pem sha1 \
  '{"Statement":[{"Resource":"https://lms.example.com/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000}}},{"Resource":"https://lms.example.com/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000}}}]}'

# nginx secure_link: md5("$secure_link_expires$uri$remote_addr secret-for-tests"), $uri decoded.
put secure_link_md5 "$(printf '%s' '2000000000/course/1/video file.mp410.1.2.3 secret-for-tests' |
  openssl md5 -binary | b64url)"

# Our HMAC scheme (SIGNED_URLS.md): the string to sign, then openssl's HMAC-SHA256.
hmac() {  # hmac SECRET_FILE  < string to sign
  openssl dgst -sha256 -mac HMAC -macopt "key:$(tr -d '\r\n' < "$1")" -binary | b64url
}
printf 'storecache-url-v1\nk1\n2000000000\nlms.example.com\n\npath\n/course/1/video.mp4\nlang=en' > sts.tmp
put hmac_path "$(hmac hmac_k1.secret < sts.tmp)"
printf 'storecache-url-v1\nk2\n2000000000\nlms.example.com\n10.1.2.3\nprefix\n/course/1/\n' > sts.tmp
put hmac_prefix_ip "$(hmac hmac_k2.secret < sts.tmp)"
rm -f sts.tmp

# scripts/sign-url must agree with openssl.
signed=$("$repo/scripts/sign-url" hmac 'https://LMS.example.com:8443/course/1/video.mp4?lang=en' \
  --secret-file hmac_k1.secret --key-id k1 --expires 2000000000)
case "$signed" in
  *"sc_sig=$(grep '^hmac_path ' "$out" | cut -d' ' -f2)") ;;
  *) echo "make_vectors: sign-url disagrees with openssl: $signed" >&2; exit 1 ;;
esac
printf '$secure_link_expires$uri$remote_addr secret-for-tests\n' > template.tmp
signed=$("$repo/scripts/sign-url" secure-link 'https://lms.example.com/course/1/video%20file.mp4' \
  --template-file template.tmp --ip 10.1.2.3 --expires 2000000000)
rm -f template.tmp
case "$signed" in
  *"md5=$(grep '^secure_link_md5 ' "$out" | cut -d' ' -f2)&expires=2000000000") ;;
  *) echo "make_vectors: sign-url (secure-link) disagrees with openssl: $signed" >&2; exit 1 ;;
esac

mv "$out" vectors.txt
echo "make_vectors: wrote $(wc -l < vectors.txt) vectors"
