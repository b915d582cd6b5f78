#include "ep/status.h"

namespace ep {

int exit_code(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kUsage: return 64;
    case Code::kData: return 65;
    case Code::kNotFound: return 65;
    case Code::kConflict: return 65;
    case Code::kUnavailable: return 69;
    case Code::kSoftware: return 70;
    case Code::kIo: return 74;
    case Code::kTemporary: return 75;
  }
  return 70;
}

const char* code_name(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kUsage: return "usage";
    case Code::kData: return "data";
    case Code::kNotFound: return "not_found";
    case Code::kConflict: return "conflict";
    case Code::kUnavailable: return "unavailable";
    case Code::kSoftware: return "software";
    case Code::kIo: return "io";
    case Code::kTemporary: return "temporary";
  }
  return "software";
}

Status Status::with_context(std::string_view context) const {
  if (is_ok()) return *this;
  std::string m(context);
  m += ": ";
  m += msg_;
  return Status(code_, std::move(m));
}

}  // namespace ep
