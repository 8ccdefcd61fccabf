#!/bin/sh
# Generates the certificates the TLS tests use, with the `openssl` command, into DIR:
#
#   ca.pem / ca.key               "Squall Test CA", the CA the tests trust
#   server.pem / server.key       localhost, 127.0.0.1 and ::1 (SAN), signed by the CA
#   expired.pem / expired.key     the same names, valid only during January 2020
#   wronghost.pem / wronghost.key wrong.example only (no IP), signed by the CA
#   sni.pem / sni.key             sni.example, signed by the CA (an SNI callback's pick)
#   client.pem / client.key       a client certificate (clientAuth), signed by the CA
#   other-ca.pem / other-ca.key   a second CA nobody's certificate chains to (unknown CA)
#
# EC P-256 keys: quick to make and to handshake with. Each .pem holds the certificate
# only (the chain is one level). Nothing leaves DIR; nothing touches the network.
#
# usage: make_certs.sh DIR
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }

make_ca() {  # name, common name
  key "$1"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
}

# A leaf signed by ca: name, common name, subjectAltName, extendedKeyUsage, and either
# "days N" or "dates START END" (openssl ca's YYYYMMDDHHMMSSZ form).
make_leaf() {
  name=$1 cn=$2 san=$3 eku=$4
  shift 4
  key "$name"
  openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn"
  cat > "$name.ext" <<EXT
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = $eku
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT
  [ -n "$san" ] && echo "subjectAltName = $san" >> "$name.ext"
  if [ "$1" = days ]; then
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$2" \
      -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  else
    # Past validity needs `openssl ca` (x509 -req only counts days from now).
    mkdir -p ca-db && : > ca-db/index.txt
    [ -f ca-db/serial ] || echo 1000 > ca-db/serial
    cat > ca-db/ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
    openssl ca -batch -config ca-db/ca.cnf -cert ca.pem -keyfile ca.key -in "$name.csr" \
      -startdate "$2" -enddate "$3" -extfile "$name.ext" -out "$name.pem" -notext 2>/dev/null
  fi
  rm -f "$name.csr" "$name.ext"
}

make_ca ca "Squall Test CA"
make_ca other-ca "Squall Other CA"
make_leaf server localhost "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth days 825
make_leaf expired localhost "DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth dates 20200101000000Z 20200201000000Z
make_leaf wronghost wrong.example "DNS:wrong.example" serverAuth days 825
make_leaf sni sni.example "DNS:sni.example" serverAuth days 825
make_leaf client "Squall Test Client" "" clientAuth days 825
rm -rf ca-db ca.srl
