// IMS/SCORM manifests: SCORM 1.2 and 2004 4th edition packages as authoring tools write them,
// xml:base nesting, sub-manifests, and hostile manifests (billion laughs, external entities,
// deep nesting, script and off-site hrefs, malformed XML).
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using namespace storecache::prefetch;

namespace {

using strings = std::vector<std::string>;

listing read(std::string_view body, std::string path = "/courses/safety/imsmanifest.xml",
             std::size_t max_entries = 100000) {
  parse_options o;
  o.source_path = std::move(path);
  o.site_name = "store.example";
  o.max_entries = max_entries;
  return parse(source_kind::ims_manifest, body, o);
}

constexpr auto scorm12 = R"(<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by an authoring tool -->
<manifest identifier="com.example.safety" version="1.0"
    xmlns="http://www.imsproject.org/xsd/imscp_rootv1p1p2"
    xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_rootv1p2"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.imsproject.org/xsd/imscp_rootv1p1p2 imscp_rootv1p1p2.xsd http://www.adlnet.org/xsd/adlcp_rootv1p2 adlcp_rootv1p2.xsd">
  <metadata>
    <schema>ADL SCORM</schema>
    <schemaversion>1.2</schemaversion>
  </metadata>
  <organizations default="org1">
    <organization identifier="org1">
      <title>Store safety</title>
      <item identifier="i1" identifierref="r1" isvisible="true">
        <title>Lesson 1: fire exits</title>
        <adlcp:masteryscore>80</adlcp:masteryscore>
      </item>
    </organization>
  </organizations>
  <resources>
    <resource identifier="r1" type="webcontent" adlcp:scormtype="sco" href="lesson1/index.html">
      <file href="lesson1/index.html"/>
      <file href="lesson1/app.js"/>
      <file href="shared/scorm_api.js"/>
      <dependency identifierref="common"/>
    </resource>
    <resource identifier="common" type="webcontent" adlcp:scormtype="asset">
      <file href="shared/scorm_api.js"/>
      <file href="shared/style.css"/>
      <file href="shared/fonts/Caf%C3%A9.woff2"/>
    </resource>
  </resources>
</manifest>
)";

constexpr auto scorm2004 = R"(<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<manifest identifier="com.example.onboarding" version="1"
    xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"
    xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3"
    xmlns:adlseq="http://www.adlnet.org/xsd/adlseq_v1p3"
    xmlns:adlnav="http://www.adlnet.org/xsd/adlnav_v1p3"
    xmlns:imsss="http://www.imsglobal.org/xsd/imsss"
    xml:base="content/">
  <metadata>
    <schema>ADL SCORM</schema>
    <schemaversion>2004 4th Edition</schemaversion>
  </metadata>
  <organizations default="ORG">
    <organization identifier="ORG" adlseq:objectivesGlobalToSystem="false">
      <title>Onboarding</title>
      <item identifier="ITEM1" identifierref="SCO1">
        <title>Welcome</title>
        <adlnav:presentation><adlnav:navigationInterface><adlnav:hideLMSUI>continue</adlnav:hideLMSUI></adlnav:navigationInterface></adlnav:presentation>
        <imsss:sequencing>
          <imsss:deliveryControls completionSetByContent="true" objectiveSetByContent="true"/>
        </imsss:sequencing>
      </item>
    </organization>
  </organizations>
  <resources xml:base="units/">
    <resource identifier="SCO1" type="webcontent" adlcp:scormType="sco" xml:base="welcome/"
        href="index.html?lang=de">
      <file href="index.html"/>
      <file href="media/welcome.mp4"/>
      <file href="../../common/player.js"/>
      <dependency identifierref="COMMON"/>
    </resource>
    <resource identifier="COMMON" type="webcontent" adlcp:scormType="asset"
        xml:base="/mirror/common/">
      <file href="runtime.js"/>
    </resource>
  </resources>
  <manifest identifier="SUB" xml:base="sub/">
    <organizations/>
    <resources>
      <resource identifier="S1" type="webcontent" adlcp:scormType="asset" href="a.html">
        <file href="a.html"/>
      </resource>
    </resources>
  </manifest>
</manifest>
)";

}  // namespace

TEST_CASE("a SCORM 1.2 manifest", "[prefetch][ims]") {
  const auto l = read(scorm12);
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/courses/safety/lesson1/index.html", "/courses/safety/lesson1/app.js",
                             "/courses/safety/shared/scorm_api.js",
                             "/courses/safety/shared/style.css",
                             "/courses/safety/shared/fonts/Caf%C3%A9.woff2"});
  CHECK(l.sources.empty());
  CHECK(l.rejected_count == 0);
}

TEST_CASE("a SCORM 2004 4th edition manifest with nested xml:base and a sub-manifest",
          "[prefetch][ims]") {
  const auto l = read(scorm2004, "/courses/onb/imsmanifest.xml?v=2");
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/courses/onb/content/units/welcome/index.html?lang=de",
                             "/courses/onb/content/units/welcome/index.html",
                             "/courses/onb/content/units/welcome/media/welcome.mp4",
                             "/courses/onb/content/common/player.js", "/mirror/common/runtime.js",
                             "/courses/onb/content/sub/a.html"});
  CHECK(l.rejected_count == 0);
}

TEST_CASE("any namespace prefix, declared or not", "[prefetch][ims]") {
  const auto l = read(R"(<imscp:manifest xmlns:imscp="http://www.imsglobal.org/xsd/imscp_v1p1">
    <imscp:resources><imscp:resource href="a.html"><imscp:file href="b.css"/></imscp:resource>
    <cp:resource href="c.js"/></imscp:resources></imscp:manifest>)",
                      "/k/imsmanifest.xml");
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/k/a.html", "/k/b.css", "/k/c.js"});
}

TEST_CASE("script, data, off-site and escaping hrefs", "[prefetch][ims]") {
  const auto l = read(R"xml(<manifest><resources>
    <resource href="javascript:alert(1)"><file href="data:text/html,x"/></resource>
    <resource href="https://cdn.other.example/course/index.html"/>
    <resource href="http://store.example/courses/safety/a.html"/>
    <resource href="../../../../../etc/passwd"/>
    <resource href="%2e%2e/%2e%2e/secret.txt"/>
    <resource href="imsmanifest.xml"/>
    <resource href="">
      <file href="ok.html#section-2"/>
    </resource>
  </resources></manifest>)xml");
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/etc/passwd", "/courses/safety/%2e%2e/%2e%2e/secret.txt",
                             "/courses/safety/ok.html"});
  CHECK(l.rejected_count == 6);
  REQUIRE(l.rejected.size() == 6);
  CHECK(l.rejected[0] == "javascript:alert(1): scheme javascript: not https");
  CHECK(l.rejected[1] == "data:text/html,x: scheme data: not https");
  CHECK(l.rejected[2] ==
        "https://cdn.other.example/course/index.html: another host (cdn.other.example)");
  CHECK(l.rejected[4] == "imsmanifest.xml: refers to itself");
  CHECK(l.rejected[5] == ": empty reference");
}

TEST_CASE("an off-site xml:base rejects every href under it", "[prefetch][ims]") {
  const auto l = read(R"(<manifest><resources xml:base="https://cdn.other.example/c/">
    <resource href="a.html"><file href="a.html"/><file href="b.js"/></resource></resources>
    <resources><resource href="local.html"/></resources></manifest>)");
  CHECK(l.objects == strings{"/courses/safety/local.html"});
  CHECK(l.rejected_count == 4);
  CHECK(l.rejected[0] ==
        "https://cdn.other.example/c/: xml:base: another host (cdn.other.example)");
  CHECK(l.rejected[1] == "a.html: under a rejected xml:base");
}

TEST_CASE("malformed XML: expat's message and line", "[prefetch][ims]") {
  const auto l = read("<manifest>\n<resources>\n<resource href=\"a.html\">\n</resources>\n");
  CHECK(l.error == "line 4: mismatched tag");
  CHECK(l.objects == strings{"/courses/safety/a.html"});  // what came before the error

  CHECK(read("").error == "line 1: no element found");
  CHECK(read("not xml at all").error == "line 1: syntax error");
  CHECK(read(std::string_view("<manifest>\0</manifest>", 22)).error.find("line 1:") == 0);
}

TEST_CASE("another root element is an error", "[prefetch][ims]") {
  CHECK(read("<html><body><a href=\"x\"/></body></html>").error ==
        "line 1: root element is <html>, not <manifest>");
  CHECK(read("<courseStructure/>").error.find("not <manifest>") != std::string::npos);
}

TEST_CASE("billion laughs: entity declarations are refused", "[prefetch][ims]") {
  std::string body = "<?xml version=\"1.0\"?>\n<!DOCTYPE manifest [\n <!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    body += " <!ENTITY lol" + std::to_string(i) + " \"";
    for (int j = 0; j < 10; ++j)
      body += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    body += "\">\n";
  }
  body += "]>\n<manifest><resources><resource href=\"&lol9;.html\"/></resources></manifest>\n";
  const auto l = read(body);
  CHECK(l.error == "line 3: entity declarations are not allowed (lol)");
  CHECK(l.objects.empty());
}

TEST_CASE("external entities are refused", "[prefetch][ims]") {
  const auto l = read(R"(<?xml version="1.0"?>
<!DOCTYPE manifest [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<manifest><resources><resource href="&xxe;"/></resources></manifest>)");
  CHECK(l.error == "line 2: entity declarations are not allowed (xxe)");
  CHECK(l.objects.empty());

  // An external DTD is not loaded; an entity it would define stays unknown, and is skipped.
  const auto dtd = read(R"(<?xml version="1.0"?>
<!DOCTYPE manifest SYSTEM "https://evil.example/x.dtd">
<manifest><resources><resource href="a&ext;b.html"/></resources></manifest>)");
  CHECK(dtd.error.empty());
  CHECK(dtd.objects == strings{"/courses/safety/ab.html"});

  const auto parameter = read(R"(<?xml version="1.0"?>
<!DOCTYPE manifest [ <!ENTITY % p SYSTEM "https://evil.example/p.dtd"> %p; ]>
<manifest/>)");
  CHECK(parameter.error.find("entity declarations are not allowed") != std::string::npos);
}

TEST_CASE("deep nesting is an error, not a stack of bases", "[prefetch][ims]") {
  std::string body = "<manifest>";
  for (int i = 0; i < 100000; ++i)
    body += "<manifest xml:base=\"a/\">";
  const auto l = read(body);
  CHECK(l.error == "line 1: elements nested deeper than 256");

  std::string fine = "<manifest>";
  for (int i = 0; i < 200; ++i)
    fine += "<manifest xml:base=\"a/\">";
  fine += "<resources><resource href=\"x.html\"/></resources>";
  for (int i = 0; i < 200; ++i)
    fine += "</manifest>";
  fine += "</manifest>";
  const auto ok = read(fine, "/imsmanifest.xml");
  CHECK(ok.error.empty());
  REQUIRE(ok.objects.size() == 1);
  CHECK(ok.objects[0].size() == 1 + 400 + 6);
}

TEST_CASE("files past max_entries are not kept", "[prefetch][ims]") {
  std::string body = "<manifest><resources><resource href=\"index.html\">";
  for (int i = 0; i < 200000; ++i)
    body += "<file href=\"f" + std::to_string(i) + ".png\"/>";
  body += "</resource></resources></manifest>";
  const auto l = read(body);
  CHECK(l.truncated);
  CHECK(l.error.empty());
  CHECK(l.objects.size() == 100000);
  CHECK(read(body, "/c/imsmanifest.xml", 5).objects.size() == 5);
}
