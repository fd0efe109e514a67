# image::FetchSignatures (src/image/signatures.h): lookaside signatures
# from file:// directories and a loopback HTTP server, sigstore attachments
# from the real registry (with the fault proxy for corrupt payloads), and a
# sigstore signature made by openssl verified end to end by trust::Evaluate.
gantry_test(signature_fetch_test LABELS integration
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/signature_fetch/signature_fetch_test.cc
  LIBS gantry_image gantry_trust gantry_testfixtures)
