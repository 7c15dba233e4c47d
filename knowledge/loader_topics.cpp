// topics.jsonc: one answer per intent, with its sources.
#include "knowledge/loader_internal.hpp"

namespace backcheck::knowledge::load {

std::vector<Topic> LoadTopics(const json& doc, const Article& article) {
  const Where file{"topics.jsonc", {}};
  CheckKeys(doc, file, {"topics"});
  std::vector<Topic> topics;
  const json& list = Array(doc, "topics", file);
  for (std::size_t n = 0; n < list.size(); ++n) {
    const json& j = list[n];
    Topic topic;
    topic.id = String(j, "id", file.With("topic " + std::to_string(n + 1)));
    Where w = file.With("topic '" + topic.id + "'");
    CheckKeys(j, w, {"id", "answer", "sources", "quick_replies"});
    topic.answer = String(j, "answer", w);
    topic.sources = Sources(j, article, w);
    topic.quick_replies = Strings(j, "quick_replies", w);
    topics.push_back(std::move(topic));
  }
  CheckUnique(topics, file, "topic");
  return topics;
}

}  // namespace backcheck::knowledge::load
