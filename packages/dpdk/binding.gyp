{
  "targets": [
    {
      "target_name": "flowline_dpdk",
      "sources": [
        "native/addon.cc",
        "native/addon_batch.cc",
        "native/addon_eal.cc",
        "native/addon_esp.cc",
        "native/addon_generator.cc",
        "native/addon_mempool.cc",
        "native/addon_pipeline.cc",
        "native/addon_port.cc",
        "native/addon_replay.cc",
        "native/fl_conntrack.c",
        "native/fl_core.c",
        "native/fl_gen.c",
        "native/fl_ipsec.c",
        "native/fl_parse.c",
        "native/fl_pipeline.c",
        "native/fl_replay.c",
        "native/fl_stage_acl.c",
        "native/fl_stage_burn.c",
        "native/fl_stage_conntrack.c",
        "native/fl_stage_esp.c",
        "native/fl_stage_l2fwd.c",
        "native/fl_stage_lpm.c",
        "native/fl_vhost.c",
        "native/fl_worker.c"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags": ["-Wall", "-Wextra", "-Werror"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags_c": ["<!@(pkg-config --cflags libdpdk)", "-std=gnu11", "-O3"],
      "libraries": ["<!@(pkg-config --libs libdpdk)"]
    }
  ]
}
