#!/usr/bin/python3
"""An independent CRI client: Python grpcio (Debian's python3-grpcio) with
stubs generated at test time from gantry's .proto (and the test's
cri_runtime_test.proto beside this file) by python3-grpc-tools
(grpc_tools.protoc).

Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET IMAGE_REF
  `gantry serve`'s CRI: drives every RPC (Version, ImageFsInfo, PullImage,
  ListImages with and without a filter, StreamImages, ImageStatus
  plain/verbose/unknown/empty, RemoveImage twice, an unserved
  RuntimeService method) and prints one line per check.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET pull IMAGE_REF
  any CRI ImageService (containerd's CRI plugin): PullImage, then
  ImageStatus; prints `image_ref ID`.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET pod IMAGE_REF LOG_DIR CMD...
  containerd's CRI plugin: a pod sandbox with the host's network (no CNI
  needed), one container of IMAGE_REF running CMD with its log in
  LOG_DIR/c.log, waits (60 s at most) until it exits, prints
  `exit_code N` and `log_path PATH`, then removes the container and the
  sandbox.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET pod-present IMAGE_REF LOG_DIR CMD...
  as `pod`, without PullImage: ImageStatus must find IMAGE_REF (kubelet's
  IfNotPresent with the image on the node), and prints `image_id ID`.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET kubelet GANTRY_SOCKET IMAGE_REF LOG_DIR CMD...
  kubelet with split endpoints: ImageService calls to GANTRY_SOCKET
  (`gantry serve --containerd`), RuntimeService calls to SOCKET
  (containerd's CRI plugin). PullImage and ImageStatus on gantry, then
  the pod of `pod` on containerd, without any image call there. Prints
  `image_ref ID`, `pull_seconds S` (PullImage) and `start_seconds S`
  (RunPodSandbox + CreateContainer + StartContainer) besides `pod`'s lines.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET kubelet-present GANTRY_SOCKET IMAGE_REF LOG_DIR CMD...
  as `kubelet`, without PullImage: ImageStatus on gantry must find it.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET kubelet-remove GANTRY_SOCKET IMAGE_REF
  RemoveImage on gantry; gantry's ImageStatus must no longer find it.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET list
  ListImages of SOCKET's ImageService: one `image ID TAGS… DIGESTS…` line each.
Usage: cri_client.py PROTO_DIR OUT_DIR SOCKET pod IMAGE_REF LOG_DIR CMD... also prints
  `pull_seconds` and `start_seconds` (kubelet-style, all on one runtime).
Each exits 1 with the failed check on stderr.
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


def stubs(proto_dir, out_dir, socket):
    """Generates the stubs, connects; returns (grpc, channel, pb, pbg, rtpb)."""
    try:
        import grpc
        from grpc_tools import protoc
    except ImportError as e:
        fail("python3-grpcio and python3-grpc-tools are needed (scripts/setup.sh): %s" % e)
    os.makedirs(out_dir, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    for proto in (os.path.join(proto_dir, "cri_image.proto"),
                  os.path.join(here, "cri_runtime_test.proto")):
        rc = protoc.main(["grpc_tools.protoc", "-I" + proto_dir, "-I" + here,
                          "--python_out=" + out_dir, "--grpc_python_out=" + out_dir, proto])
        check(rc == 0, "grpc_tools.protoc generated the stubs of " + os.path.basename(proto))
    sys.path.insert(0, out_dir)
    import cri_image_pb2 as pb
    import cri_image_pb2_grpc as pbg
    import cri_runtime_test_pb2 as rtpb

    channel = grpc.insecure_channel("unix:" + socket)
    grpc.channel_ready_future(channel).result(timeout=30)
    return grpc, channel, pb, pbg, rtpb


def call(channel, method, request, response_type, timeout=60):
    """A RuntimeService method by path (cri_runtime_test.proto declares no service)."""
    rpc = channel.unary_unary("/runtime.v1.RuntimeService/" + method,
                              request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=response_type.FromString)
    return rpc(request, timeout=timeout)


def pull(channel, pb, pbg, image):
    import time
    images = pbg.ImageServiceStub(channel)
    began = time.monotonic()
    ref = images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)),
                           timeout=120).image_ref
    print("pull_seconds %.6f" % (time.monotonic() - began))
    st = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image)), timeout=30)
    check(st.HasField("image") and st.image.id == ref, "PullImage " + image + " then ImageStatus")
    return ref


def present(channel, pb, pbg, image):
    images = pbg.ImageServiceStub(channel)
    st = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image)), timeout=30)
    check(st.HasField("image"), "ImageStatus " + image + " finds it without a pull")
    return st.image.id


def run_pod(grpc, channel, pb, pbg, rtpb, image, log_dir, cmd, do_pull=True, image_channel=None):
    """image_channel: where the image calls go (kubelet's --image-service-endpoint);
    by default the runtime's channel."""
    import time
    image_channel = image_channel or channel
    if do_pull:
        pull(image_channel, pb, pbg, image)
    else:
        print("image_id " + present(image_channel, pb, pbg, image))
    began = time.monotonic()
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="p", uid="u-%d" % os.getpid(), namespace="gantry",
                                       attempt=1),
        log_directory=log_dir,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER,
                                                 ipc=pb.POD))))
    try:
        sid = call(channel, "RunPodSandbox", rtpb.RunPodSandboxRequest(config=sandbox),
                   rtpb.RunPodSandboxResponse, timeout=120).pod_sandbox_id
    except grpc.RpcError as e:
        fail("RunPodSandbox: %s: %s" % (e.code(), e.details()))
    check(sid != "", "RunPodSandbox (host network) answers " + sid)
    try:
        config = rtpb.ContainerConfig(metadata=rtpb.ContainerMetadata(name="c"),
                                      image=pb.ImageSpec(image=image), command=cmd,
                                      log_path="c.log")
        cid = call(channel, "CreateContainer",
                   rtpb.CreateContainerRequest(pod_sandbox_id=sid, config=config,
                                               sandbox_config=sandbox),
                   rtpb.CreateContainerResponse).container_id
        check(cid != "", "CreateContainer answers " + cid)
        call(channel, "StartContainer", rtpb.StartContainerRequest(container_id=cid),
             rtpb.StartContainerResponse)
        check(True, "StartContainer")
        print("start_seconds %.6f" % (time.monotonic() - began))
        deadline = time.monotonic() + 60
        while True:
            status = call(channel, "ContainerStatus", rtpb.ContainerStatusRequest(container_id=cid),
                          rtpb.ContainerStatusResponse).status
            if status.state == rtpb.CONTAINER_EXITED or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # polling the state with a deadline
        check(status.state == rtpb.CONTAINER_EXITED,
              "the container exits (state %d, reason %s %s)" % (status.state, status.reason,
                                                               status.message))
        print("exit_code %d" % status.exit_code)
        print("log_path " + status.log_path)
        call(channel, "RemoveContainer", rtpb.RemoveContainerRequest(container_id=cid),
             rtpb.RemoveContainerResponse)
    finally:
        call(channel, "StopPodSandbox", rtpb.StopPodSandboxRequest(pod_sandbox_id=sid),
             rtpb.StopPodSandboxResponse)
        call(channel, "RemovePodSandbox", rtpb.RemovePodSandboxRequest(pod_sandbox_id=sid),
             rtpb.RemovePodSandboxResponse)
    check(True, "RemoveContainer, StopPodSandbox, RemovePodSandbox")


def wait_ready(grpc, channel, pb, pbg):
    """containerd's CRI plugin answers "not initialized yet" for a moment after it starts."""
    import time
    images = pbg.ImageServiceStub(channel)
    deadline = time.monotonic() + 30
    while True:
        try:
            images.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=30)
            return
        except grpc.RpcError as e:
            if time.monotonic() > deadline:
                fail("the CRI service is not ready: %s: %s" % (e.code(), e.details()))
        time.sleep(0.1)  # polling readiness with a deadline


def main():
    proto_dir, out_dir, socket = sys.argv[1:4]
    grpc, channel, pb, pbg, rtpb = stubs(proto_dir, out_dir, socket)
    if sys.argv[4] in ("pull", "pod", "pod-present", "kubelet", "kubelet-present", "list"):
        wait_ready(grpc, channel, pb, pbg)
    if sys.argv[4] == "pull":
        print("image_ref " + pull(channel, pb, pbg, sys.argv[5]))
        return
    if sys.argv[4] == "pod":
        run_pod(grpc, channel, pb, pbg, rtpb, sys.argv[5], sys.argv[6], sys.argv[7:])
        return
    if sys.argv[4] == "pod-present":
        run_pod(grpc, channel, pb, pbg, rtpb, sys.argv[5], sys.argv[6], sys.argv[7:],
                do_pull=False)
        return
    if sys.argv[4] in ("kubelet", "kubelet-present"):
        gantry = grpc.insecure_channel("unix:" + sys.argv[5])
        grpc.channel_ready_future(gantry).result(timeout=30)
        if sys.argv[4] == "kubelet":
            print("image_ref " + pull(gantry, pb, pbg, sys.argv[6]))
        run_pod(grpc, channel, pb, pbg, rtpb, sys.argv[6], sys.argv[7], sys.argv[8:],
                do_pull=False, image_channel=gantry)
        return
    if sys.argv[4] == "kubelet-remove":
        gantry = grpc.insecure_channel("unix:" + sys.argv[5])
        grpc.channel_ready_future(gantry).result(timeout=30)
        images = pbg.ImageServiceStub(gantry)
        images.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=sys.argv[6])),
                           timeout=60)
        st = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=sys.argv[6])),
                                timeout=30)
        check(not st.HasField("image"), "RemoveImage on gantry removes " + sys.argv[6])
        return
    if sys.argv[4] == "list":
        images = pbg.ImageServiceStub(channel)
        for i in images.ListImages(pb.ListImagesRequest(), timeout=30).images:
            print(" ".join(["image", i.id] + list(i.repo_tags) + list(i.repo_digests)))
        return
    image = sys.argv[4]
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
