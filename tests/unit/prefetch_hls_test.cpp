// HLS playlists (RFC 8216): an Apple-style master with audio renditions and I-frame streams, a
// media playlist with EXT-X-MAP, byte ranges and keys, the lowest_and_highest choice, §4.2
// attribute lists, and hostile playlists.
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using namespace storecache::prefetch;

namespace {

using strings = std::vector<std::string>;

listing read(std::string_view body, hls_variants variants = hls_variants::all,
             std::string path = "/video/launch/master.m3u8") {
  parse_options o;
  o.source_path = std::move(path);
  o.site_name = "store.example";
  o.variants = variants;
  return parse(source_kind::hls, body, o);
}

// After Apple's bipbop advanced example: variants in no particular BANDWIDTH order.
constexpr auto master = R"(#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",AUTOSELECT=YES,DEFAULT=YES,CHANNELS="2",URI="audio/en/prog_index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="de",NAME="Deutsch",AUTOSELECT=YES,DEFAULT=NO,CHANNELS="2",URI="audio/de/prog_index.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="English",INSTREAM-ID="CC1"

#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=2168183,BANDWIDTH=2177116,CODECS="avc1.640020,mp4a.40.2",RESOLUTION=960x540,FRAME-RATE=60.000,AUDIO="aac",CLOSED-CAPTIONS="cc"
v5/prog_index.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=7968416,BANDWIDTH=8001098,CODECS="avc1.64002a,mp4a.40.2",RESOLUTION=1920x1080,FRAME-RATE=60.000,AUDIO="aac",CLOSED-CAPTIONS="cc"
v9/prog_index.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=533846,BANDWIDTH=541929,CODECS="avc1.640015,mp4a.40.2",RESOLUTION=480x270,FRAME-RATE=30.000,AUDIO="aac",CLOSED-CAPTIONS="cc"
v2/prog_index.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=4250000,BANDWIDTH=4300000,CODECS="avc1.640028,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=60.000,AUDIO="aac",CLOSED-CAPTIONS="cc"
/video/launch/v7/prog_index.m3u8

#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=186522,CODECS="avc1.64002a",RESOLUTION=1920x1080,URI="v9/iframe_index.m3u8"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=40000,CODECS="avc1.640015",RESOLUTION=480x270,URI="v2/iframe_index.m3u8"
)";

constexpr auto media = R"(#EXTM3U
#EXT-X-TARGETDURATION:6
#EXT-X-VERSION:7
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="https://store.example/keys/launch.key",KEYFORMAT="identity",IV=0x0123456789ABCDEF0123456789ABCDEF
#EXT-X-MAP:URI="main.mp4",BYTERANGE="719@0"
#EXTINF:6.00000,
#EXT-X-BYTERANGE:1508000@719
main.mp4
#EXTINF:6.00000,
#EXT-X-BYTERANGE:1510000@1508719
main.mp4
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="../outro/init.mp4"
#EXTINF:4.50000,	title
../outro/seg1.m4s?token=abc
#EXTINF:4.0,
https://store.example/video/shared/bumper.m4s
#EXT-X-ENDLIST
)";

}  // namespace

TEST_CASE("a master playlist: renditions, variants and I-frame streams are sources",
          "[prefetch][hls]") {
  const auto l = read(master);
  CHECK(l.error.empty());
  CHECK(l.objects.empty());
  CHECK(l.sources ==
        strings{"/video/launch/audio/en/prog_index.m3u8", "/video/launch/audio/de/prog_index.m3u8",
                "/video/launch/v5/prog_index.m3u8", "/video/launch/v9/prog_index.m3u8",
                "/video/launch/v2/prog_index.m3u8", "/video/launch/v7/prog_index.m3u8",
                "/video/launch/v9/iframe_index.m3u8", "/video/launch/v2/iframe_index.m3u8"});
  CHECK(l.rejected_count == 0);
}

TEST_CASE("lowest_and_highest keeps two variants, every rendition, no I-frame stream",
          "[prefetch][hls]") {
  const auto l = read(master, hls_variants::lowest_and_highest);
  CHECK(l.error.empty());
  // Highest (v9, 8001098) appears before lowest (v2, 541929) in the playlist.
  CHECK(l.sources ==
        strings{"/video/launch/audio/en/prog_index.m3u8", "/video/launch/audio/de/prog_index.m3u8",
                "/video/launch/v9/prog_index.m3u8", "/video/launch/v2/prog_index.m3u8"});
}

TEST_CASE("lowest_and_highest: one variant, ties, off-site variants do not compete",
          "[prefetch][hls]") {
  const auto one = read("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nonly.m3u8\n",
                        hls_variants::lowest_and_highest);
  CHECK(one.sources == strings{"/video/launch/only.m3u8"});

  const auto l = read(
      "#EXTM3U\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=9000000\nhttps://cdn.other.example/hi.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=500000\nlow-a.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=500000\nlow-b.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=3000000\nmid.m3u8\n",
      hls_variants::lowest_and_highest);
  CHECK(l.sources == strings{"/video/launch/low-a.m3u8", "/video/launch/mid.m3u8"});
  CHECK(l.rejected_count == 1);
}

TEST_CASE("a media playlist: segments once, init sections, same-site keys", "[prefetch][hls]") {
  const auto l = read(media, hls_variants::all, "/video/launch/v9/prog_index.m3u8");
  CHECK(l.error.empty());
  CHECK(l.sources.empty());
  CHECK(l.objects == strings{"/keys/launch.key", "/video/launch/v9/main.mp4",
                             "/video/launch/outro/init.mp4",
                             "/video/launch/outro/seg1.m4s?token=abc", "/video/shared/bumper.m4s"});
}

TEST_CASE("keys: another host is rejected, METHOD=NONE has none, skd: is not https",
          "[prefetch][hls]") {
  const auto l = read(
      "#EXTM3U\n#EXT-X-TARGETDURATION:4\n"
      "#EXT-X-KEY:METHOD=AES-128,URI=\"https://drm.other.example/license?id=1,2\"\n"
      "#EXTINF:4,\na.ts\n"
      "#EXT-X-KEY:METHOD=NONE\n"
      "#EXTINF:4,\nb.ts\n"
      "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://"
      "key42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n"
      "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k2.bin\"\n"
      "#EXTINF:4,\nc.ts\n",
      hls_variants::all, "/v/p.m3u8");
  CHECK(l.objects == strings{"/v/a.ts", "/v/b.ts", "/v/keys/k2.bin", "/v/c.ts"});
  CHECK(l.rejected_count == 2);
  REQUIRE(l.rejected.size() == 2);
  CHECK(l.rejected[0] ==
        "https://drm.other.example/license?id=1,2: another host (drm.other.example)");
  CHECK(l.rejected[1] == "skd://key42: scheme skd: not https");
}

TEST_CASE("attribute lists per RFC 8216 4.2: commas inside quoted strings", "[prefetch][hls]") {
  const auto l = read(
      "#EXTM3U\n"
      "#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"Commentary, director\",GROUP-ID=\"a\",URI=\"a,b/c.m3u8\"\n"
      "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"unterminated.m3u8\n"
      "#EXT-X-MEDIA:TYPE=AUDIO,bad name=1,URI=\"after-bad.m3u8\"\n"
      "#EXT-X-MAP:URI=\"\"\n");
  CHECK(l.sources == strings{"/video/launch/a,b/c.m3u8"});
  CHECK(l.rejected == strings{": empty reference"});
}

TEST_CASE("a body that is not a playlist is an error", "[prefetch][hls]") {
  for (std::string_view body : {"", "<html><body>404</body></html>", "#EXTM3UX\na.ts\n",
                                "a.ts\n#EXTM3U\n", "#EXTINF:4,\na.ts\n"}) {
    INFO(body);
    const auto l = read(body);
    CHECK(l.error == "not a playlist: the first line is not #EXTM3U");
    CHECK(l.objects.empty());
  }
  CHECK(read("\xEF\xBB\xBF\r\n#EXTM3U\r\n#EXTINF:4,\r\na.ts\r\n").objects ==
        strings{"/video/launch/a.ts"});
}

TEST_CASE("hostile playlists", "[prefetch][hls]") {
  std::string body =
      "#EXTM3U\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=1\nmaster.m3u8\n"  // the master listing itself
      "#EXT-X-STREAM-INF:BANDWIDTH=2\n./../launch/./master.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=3\nhttp://store.example/v.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=4\n../../../../v%2e%2e/x.m3u8\n"
      "#EXTINF:4,\njavascript:alert(1)\n";
  body += std::string("#EXTINF:4,\nseg\0.ts\n", 19);
  const auto l = read(body);
  CHECK(l.sources == strings{"/v%2e%2e/x.m3u8"});
  CHECK(l.objects.empty());
  CHECK(l.rejected_count == 5);
  REQUIRE(l.rejected.size() == 5);
  CHECK(l.rejected[0] == "master.m3u8: refers to itself");
  CHECK(l.rejected[1] == "./../launch/./master.m3u8: refers to itself");
  CHECK(l.rejected[4] == "seg\\x00.ts: control character");
}

TEST_CASE("200,000 segments stop at max_entries", "[prefetch][hls]") {
  std::string body = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n";
  for (int i = 0; i < 200000; ++i)
    body += "#EXTINF:2,\nseg" + std::to_string(i) + ".ts\n";
  const auto l = read(body);
  CHECK(l.truncated);
  CHECK(l.objects.size() == 100000);
  CHECK(l.objects.back() == "/video/launch/seg99999.ts");
}
