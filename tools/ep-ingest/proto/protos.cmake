# The protobuf messages of the remote-write and OTLP receivers, compiled with Debian's
# protoc into a static library NAME (generated sources under the build tree). Included by
# tools/ep-ingest/CMakeLists.txt and by the fuzz build (tests/fuzz).
find_package(Protobuf REQUIRED)
function(ep_ingest_protos name)
  set(src ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/proto)
  file(MAKE_DIRECTORY ${out})
  set(generated)
  foreach(p prompb/remote.proto otlp/metrics.proto google/status.proto)
    string(REGEX REPLACE "\\.proto$" "" base ${p})
    add_custom_command(OUTPUT ${out}/${base}.pb.cc ${out}/${base}.pb.h
      COMMAND protobuf::protoc --cpp_out=${out} -I ${src} -I ${Protobuf_INCLUDE_DIRS} ${src}/${p}
      DEPENDS ${src}/${p} protobuf::protoc VERBATIM)
    list(APPEND generated ${out}/${base}.pb.cc)
  endforeach()
  add_library(${name} STATIC ${generated})
  # Generated code: its warnings are protoc's, not ours.
  target_compile_options(${name} PRIVATE -w)
  target_include_directories(${name} SYSTEM PUBLIC ${out})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf)
endfunction()
