#pragma once
// The AWS shared configuration and credentials files, as the AWS CLI reads them, for the
// s3:// archive: INI text ("[section]", "key = value", "#" and ";" comment lines,
// indented continuation lines of nested settings), read with fixed bounds since the
// files come from outside the program.
//
// Precedence (as in the AWS CLI): the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN; AWS_REGION, AWS_DEFAULT_REGION) wins over the
// files. The profile is $AWS_PROFILE (default "default"); credentials come from its
// section of $AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials, "[NAME]"), else
// of $AWS_CONFIG_FILE (default ~/.aws/config, "[profile NAME]", "[default]"), and the
// region from the config file.
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ep/status.h"

namespace ep::aws {

inline constexpr size_t kMaxIniBytes = 1 << 20;  // a larger file is refused
inline constexpr size_t kMaxIniLine = 4096;
inline constexpr size_t kMaxIniEntries = 10000;  // sections plus keys

// Section name -> key -> value (keys lowercased, values trimmed). A nested setting
// ("s3 =" followed by indented "key = value" lines) is stored as "s3.key".
using Ini = std::map<std::string, std::map<std::string, std::string>>;
// Errors name the source and line: "<source>:<line>: <reason>" (kData).
Result<Ini> parse_ini(std::string_view text, const std::string& source);

struct Credentials {
  std::string access_key, secret_key, session_token, region;
  std::string profile, credentials_file, config_file;  // what was consulted
};
// Reads a variable of the environment (nullopt when unset or empty).
using Env = std::function<std::optional<std::string>(const char* name)>;
Env process_env();
// Credentials and region by the precedence above; an explicitly named profile
// ($AWS_PROFILE) that no file has is a kUsage error, and so is an unreadable or
// malformed file. Missing files are no error.
Result<Credentials> resolve_credentials(const Env& env);

}  // namespace ep::aws
