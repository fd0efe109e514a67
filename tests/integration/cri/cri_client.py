#!/usr/bin/python3
"""An independent CRI client for `gantry serve`: Python grpcio (Debian's
python3-grpcio) with stubs generated at test time from gantry's .proto by
python3-grpc-tools (grpc_tools.protoc).

Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET IMAGE_REF

Drives every RPC (Version, ImageFsInfo, PullImage, ListImages with and
without a filter, StreamImages, ImageStatus plain/verbose/unknown/empty,
RemoveImage twice, an unserved RuntimeService method) and prints one line
per check; exits 1 with the failed check on stderr.
"""

import json
import os
import sys


def fail(msg):
    sys.stderr.write("FAIL: " + msg + "\n")
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg)


def main():
    proto_dir, out_dir, socket, image = sys.argv[1:5]
    try:
        import grpc
        from grpc_tools import protoc
    except ImportError as e:
        fail("python3-grpcio and python3-grpc-tools are needed (scripts/setup.sh): %s" % e)
    os.makedirs(out_dir, exist_ok=True)
    rc = protoc.main(["grpc_tools.protoc", "-I" + proto_dir, "--python_out=" + out_dir,
                      "--grpc_python_out=" + out_dir,
                      os.path.join(proto_dir, "cri_image.proto")])
    check(rc == 0, "grpc_tools.protoc generated the stubs")
    sys.path.insert(0, out_dir)
    import cri_image_pb2 as pb
    import cri_image_pb2_grpc as pbg

    channel = grpc.insecure_channel("unix:" + socket)
    grpc.channel_ready_future(channel).result(timeout=30)
    rt = pbg.RuntimeServiceStub(channel)
    images = pbg.ImageServiceStub(channel)

    v = rt.Version(pb.VersionRequest(version="v1"), timeout=30)
    check(v.runtime_name == "gantry" and v.runtime_api_version == "v1", "Version")

    fs = images.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=30)
    check(len(fs.image_filesystems) == 1 and fs.image_filesystems[0].timestamp > 0
          and fs.image_filesystems[0].fs_id.mountpoint != "", "ImageFsInfo")

    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="default", attempt=1),
        hostname="p", log_directory="/var/log/pods/x",
        dns_config=pb.DNSConfig(servers=["10.0.0.10"], searches=["svc"], options=["ndots:5"]),
        port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=8080)],
        labels={"app": "x"}, annotations={"a": "b"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods", sysctls={"net.core.somaxconn": "1024"},
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER),
                run_as_user=pb.Int64Value(value=1000),
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)),
            resources=pb.LinuxContainerResources(cpu_shares=2, memory_limit_in_bytes=1 << 30)))
    pulled = images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image),
                                                  sandbox_config=sandbox), timeout=120)
    check(pulled.image_ref.startswith("sha256:"), "PullImage answers image_ref " + pulled.image_ref)

    listed = images.ListImages(pb.ListImagesRequest(), timeout=30).images
    check(len(listed) == 1 and listed[0].id == pulled.image_ref, "ListImages lists the image")
    img = listed[0]
    check(image in img.repo_tags, "repo_tags holds " + image)
    check(all("@sha256:" in d for d in img.repo_digests) and img.repo_digests, "repo_digests")
    check(img.size > 0, "size > 0")
    check(not (img.HasField("uid") and img.username), "uid and username exclusive")

    filt = pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image=img.id)))
    check(len(images.ListImages(filt, timeout=30).images) == 1, "ListImages filter by id")
    none = pb.ListImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec(image="127.0.0.1:1/none:x")))
    check(len(images.ListImages(none, timeout=30).images) == 0, "ListImages filter, no match")

    streamed = [i.id for r in images.StreamImages(pb.StreamImagesRequest(), timeout=30)
                for i in r.images]
    check(streamed == [img.id], "StreamImages sends each image once, then ends")

    st = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=True),
                            timeout=30)
    check(st.HasField("image") and st.image.id == img.id, "ImageStatus by tag")
    for k in ("config", "chainID", "snapshot"):
        check(k in st.info, "verbose info has " + k)
        json.loads(st.info[k])
    unknown = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="127.0.0.1:1/no:x")),
                                 timeout=30)
    check(not unknown.HasField("image"), "ImageStatus of an unknown image has no image")
    try:
        images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="")), timeout=30)
        fail("ImageStatus of an empty spec succeeded")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "empty spec is INVALID_ARGUMENT")

    for _ in range(2):
        images.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=img.id)), timeout=30)
    check(len(images.ListImages(pb.ListImagesRequest(), timeout=30).images) == 0,
          "RemoveImage (twice: idempotent) removes it")

    unserved = channel.unary_unary("/runtime.v1.RuntimeService/ListContainers",
                                   request_serializer=lambda x: x,
                                   response_deserializer=lambda x: x)
    try:
        unserved(b"", timeout=30)
        fail("ListContainers answered")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.UNIMPLEMENTED, "other RuntimeService methods: UNIMPLEMENTED")
    print("all checks passed")


if __name__ == "__main__":
    main()
