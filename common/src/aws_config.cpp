// The AWS shared config/credentials files (ep/aws_config.h).
#include "ep/aws_config.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ep::aws {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads at most kMaxIniBytes of a file; nullopt when it does not exist.
Result<std::optional<std::string>> read_bounded(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::optional<std::string>{};
    return Status::usage(path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::usage(path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxIniBytes) {
      ::close(fd);
      return Status::usage(path + ": larger than " + std::to_string(kMaxIniBytes) + " bytes");
    }
  }
  ::close(fd);
  return std::optional<std::string>(std::move(out));
}

}  // namespace

Result<Ini> parse_ini(std::string_view text, const std::string& source) {
  if (text.size() > kMaxIniBytes)
    return Status::data(source + ": larger than " + std::to_string(kMaxIniBytes) + " bytes");
  Ini ini;
  std::map<std::string, std::string>* section = nullptr;
  std::string parent;  // a key with an empty value: indented lines below it are nested
  size_t entries = 0, line_no = 0;
  auto fail = [&](const std::string& why) { return Status::data(source + ":" + std::to_string(line_no) + ": " + why); };
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (raw.size() > kMaxIniLine) return fail("line longer than " + std::to_string(kMaxIniLine) + " bytes");
    if (raw.find('\0') != std::string_view::npos) return fail("NUL byte");
    bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return fail("section header without ']'");
      std::string name(trim(line.substr(1, line.size() - 2)));
      if (name.empty()) return fail("empty section name");
      if (++entries > kMaxIniEntries) return fail("more than " + std::to_string(kMaxIniEntries) + " entries");
      section = &ini[name];
      parent.clear();
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("expected [section] or key = value");
    if (!section) return fail("key = value before any [section]");
    std::string key = lower(trim(line.substr(0, eq)));
    std::string value(trim(line.substr(eq + 1)));
    if (key.empty()) return fail("empty key");
    if (indented && !parent.empty()) {
      key = parent + "." + key;
    } else {
      parent = value.empty() ? key : std::string();
    }
    if (++entries > kMaxIniEntries) return fail("more than " + std::to_string(kMaxIniEntries) + " entries");
    (*section)[key] = std::move(value);
  }
  return ini;
}

Env process_env() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  };
}

Result<Credentials> resolve_credentials(const Env& env) {
  Credentials c;
  std::string home = env("HOME").value_or("");
  c.profile = env("AWS_PROFILE").value_or("default");
  bool named = env("AWS_PROFILE").has_value();
  c.credentials_file = env("AWS_SHARED_CREDENTIALS_FILE").value_or(home + "/.aws/credentials");
  c.config_file = env("AWS_CONFIG_FILE").value_or(home + "/.aws/config");
  auto load = [](const std::string& path) -> Result<std::optional<Ini>> {
    auto text = read_bounded(path);
    if (!text) return text.status();
    if (!*text) return std::optional<Ini>{};
    auto ini = parse_ini(**text, path);
    if (!ini) return Status::usage(ini.status().message());
    return std::optional<Ini>(std::move(*ini));
  };
  auto cred_ini = load(c.credentials_file);
  if (!cred_ini) return cred_ini.status();
  auto conf_ini = load(c.config_file);
  if (!conf_ini) return conf_ini.status();
  const std::map<std::string, std::string>* cred = nullptr;
  const std::map<std::string, std::string>* conf = nullptr;
  if (*cred_ini) {
    auto it = (*cred_ini)->find(c.profile);
    if (it != (*cred_ini)->end()) cred = &it->second;
  }
  if (*conf_ini) {
    auto it = (*conf_ini)->find(c.profile == "default" ? "default" : "profile " + c.profile);
    if (it == (*conf_ini)->end() && c.profile == "default") it = (*conf_ini)->find("profile default");
    if (it != (*conf_ini)->end()) conf = &it->second;
  }
  if (named && !cred && !conf)
    return Status::usage("AWS_PROFILE " + c.profile + ": no such profile in " + c.credentials_file + " or " +
                         c.config_file);
  auto from = [](const std::map<std::string, std::string>* m, const char* key) -> std::string {
    if (!m) return {};
    auto it = m->find(key);
    return it == m->end() ? std::string() : it->second;
  };
  auto env_id = env("AWS_ACCESS_KEY_ID"), env_secret = env("AWS_SECRET_ACCESS_KEY");
  if (env_id && env_secret) {
    c.access_key = *env_id;
    c.secret_key = *env_secret;
    c.session_token = env("AWS_SESSION_TOKEN").value_or("");
  } else {
    for (const auto* m : {cred, conf}) {
      if (from(m, "aws_access_key_id").empty()) continue;
      c.access_key = from(m, "aws_access_key_id");
      c.secret_key = from(m, "aws_secret_access_key");
      c.session_token = from(m, "aws_session_token");
      break;
    }
  }
  c.region = env("AWS_REGION").value_or(env("AWS_DEFAULT_REGION").value_or(from(conf, "region")));
  return c;
}

}  // namespace ep::aws
