#pragma once
// TLS in process-level tests with the real tools: a self-signed certificate made at test
// time by `openssl req -x509` (no key is ever committed), the real `curl` against it, and
// the fingerprint of the certificate a server actually serves (`openssl s_client`).
#include <cstdio>
#include <stdexcept>
#include <string>

#include <sys/wait.h>

namespace eptest {

struct Shell {
  int code = -1;
  std::string out;  // stdout and stderr
};

inline Shell shell(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  Shell r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

struct CertFiles {
  std::string cert, key;
};

// A fresh P-256 key and self-signed certificate for 127.0.0.1 as DIR/NAME.crt, DIR/NAME.key.
inline CertFiles make_cert(const std::string& dir, const std::string& name) {
  CertFiles f{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  Shell r = shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
                  "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " + f.key +
                  " -out " + f.cert);
  if (r.code != 0) throw std::runtime_error("openssl req failed: " + r.out);
  return f;
}

// "SHA256 Fingerprint=AB:CD:…" of a PEM certificate file.
inline std::string file_fingerprint(const std::string& cert) {
  return shell("openssl x509 -noout -fingerprint -sha256 -in " + cert).out;
}

// The same for the certificate served on 127.0.0.1:port ("" when the handshake fails).
inline std::string served_fingerprint(unsigned short port) {
  Shell r = shell("openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                  " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
  return r.code == 0 ? r.out : "";
}

// curl over HTTPS verifying against `ca`; out is "<body>\n<status>".
inline Shell curl_https(unsigned short port, const std::string& path, const std::string& ca,
                        const std::string& extra = "") {
  return shell("curl -sS --max-time 20 --cacert " + ca + " " + extra + " -w '\\n%{http_code}' https://127.0.0.1:" +
               std::to_string(port) + path);
}

// An attempt at TLS 1.1 only (the client allowed to offer it at any security level).
inline Shell tls11_attempt(unsigned short port) {
  return shell("openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
               " -tls1_1 -cipher DEFAULT@SECLEVEL=0 </dev/null");
}

}  // namespace eptest
