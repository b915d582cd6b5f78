#include "archive_internal.h"
namespace ep::archive_detail {
Result<std::unique_ptr<Archive>> open_s3(const std::string& uri, const std::string&,
                                         const std::string&, const ArchiveOptions&) {
  return Status::usage(uri + ": s3:// archives are not available in this build yet");
}
}  // namespace ep::archive_detail
