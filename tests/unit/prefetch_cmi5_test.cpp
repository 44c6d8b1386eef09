// cmi5 course structures: a course with blocks, AUs on the site and elsewhere, and hostile ones.
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using namespace storecache::prefetch;

namespace {

using strings = std::vector<std::string>;

listing read(std::string_view body, std::string path = "/courses/pos/cmi5.xml") {
  parse_options o;
  o.source_path = std::move(path);
  o.site_name = "store.example";
  return parse(source_kind::cmi5, body, o);
}

constexpr auto course = R"(<?xml version="1.0" encoding="utf-8"?>
<courseStructure xmlns="https://w3id.org/xapi/profiles/cmi5/v1/CourseStructure.xsd">
  <course id="https://store.example/courses/pos">
    <title><langstring lang="en-US">Point of sale basics</langstring></title>
    <description><langstring lang="en-US">Tills, returns, gift cards.</langstring></description>
  </course>
  <objectives>
    <objective id="https://store.example/objectives/till">
      <title><langstring lang="en-US">Open and close a till</langstring></title>
      <description><langstring lang="en-US">…</langstring></description>
    </objective>
  </objectives>
  <block id="https://store.example/courses/pos/block/1">
    <title><langstring lang="en-US">Module 1</langstring></title>
    <description><langstring lang="en-US">The till</langstring></description>
    <au id="https://store.example/courses/pos/au/1" moveOn="CompletedOrPassed"
        masteryScore="0.8" launchMethod="OwnWindow" activityType="http://adlnet.gov/expapi/activities/lesson">
      <title><langstring lang="en-US">Opening the till</langstring></title>
      <description><langstring lang="en-US">Counting the float.</langstring></description>
      <url>au1/index.html</url>
    </au>
    <block id="https://store.example/courses/pos/block/1a">
      <title><langstring lang="en-US">Practice</langstring></title>
      <description><langstring lang="en-US">…</langstring></description>
      <au id="https://store.example/courses/pos/au/2">
        <title><langstring lang="en-US">Quiz</langstring></title>
        <description><langstring lang="en-US">…</langstring></description>
        <url>
          https://store.example/courses/pos/au2/quiz.html?lang=en-US&amp;mode=practice
        </url>
        <launchParameters>{"difficulty":"easy"}</launchParameters>
      </au>
    </block>
  </block>
  <au id="https://store.example/courses/pos/au/3">
    <title><langstring lang="en-US">Vendor video</langstring></title>
    <description><langstring lang="en-US">Hosted by the vendor.</langstring></description>
    <url>https://lms.vendor.example/au/till-video</url>
  </au>
  <au id="https://store.example/courses/pos/au/4">
    <title><langstring lang="en-US">Wrap-up</langstring></title>
    <description><langstring lang="en-US">…</langstring></description>
    <url><![CDATA[../shared/wrap up.html]]></url>
  </au>
</courseStructure>
)";

}  // namespace

TEST_CASE("a cmi5 course with blocks", "[prefetch][cmi5]") {
  const auto l = read(course);
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/courses/pos/au1/index.html",
                             "/courses/pos/au2/quiz.html?lang=en-US&mode=practice"});
  CHECK(l.sources.empty());
  CHECK(l.rejected_count == 2);
  CHECK(l.rejected == strings{"https://lms.vendor.example/au/till-video: another host "
                              "(lms.vendor.example)",
                              "../shared/wrap up.html: space"});
}

TEST_CASE("only an au's url counts", "[prefetch][cmi5]") {
  const auto l = read(R"(<cmi5:courseStructure xmlns:cmi5="x">
    <url>not-in-an-au.html</url>
    <cmi5:au><cmi5:url>a.html</cmi5:url><title><url>nested.html</url></title></cmi5:au>
    <au><url></url></au>
  </cmi5:courseStructure>)");
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/courses/pos/a.html"});
  CHECK(l.rejected == strings{": empty reference"});
}

TEST_CASE("hostile course structures", "[prefetch][cmi5]") {
  const auto l = read(R"(<courseStructure>
    <au><url>javascript:alert(1)</url></au>
    <au><url>data:text/html;base64,PHNjcmlwdD4=</url></au>
    <au><url>//evil.example/au</url></au>
    <au><url>../../../../etc/shadow</url></au>
    <au><url>cmi5.xml</url></au>
  </courseStructure>)");
  CHECK(l.objects == strings{"/etc/shadow"});
  CHECK(l.rejected_count == 4);
  CHECK(l.rejected[3] == "cmi5.xml: refers to itself");

  std::string huge = "<courseStructure><au><url>";
  huge += std::string(100000, 'a');
  huge += "</url></au></courseStructure>";
  const auto h = read(huge);
  CHECK(h.objects.empty());
  REQUIRE(h.rejected.size() == 1);
  CHECK(h.rejected[0].ends_with("...: longer than 4096 bytes"));
}

TEST_CASE("malformed or foreign XML is an error", "[prefetch][cmi5]") {
  CHECK(read("<courseStructure><au><url>a.html</au></courseStructure>").error ==
        "line 1: mismatched tag");
  CHECK(read("<manifest/>").error == "line 1: root element is <manifest>, not <courseStructure>");
  CHECK(read(R"(<!DOCTYPE c [<!ENTITY a "aaaaaaaaaa">]><courseStructure/>)").error ==
        "line 1: entity declarations are not allowed (a)");
}
