// The version of a knowledge base folder: a hash of its content, so that a server, its logs,
// /healthz, /metrics and every stored conversation can say which content answered.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace backcheck::knowledge {

// The files LoadKnowledgeBase reads, relative to the folder, in the order they are hashed.
const std::vector<std::string>& KnowledgeFiles();

// The first 16 hex digits of the SHA-256 of the files of KnowledgeFiles(), each as its relative
// path, a NUL, its size in decimal, a NUL and its bytes (a missing file as its path and "-"),
// in that order. The same content gives the same version wherever the folder is.
std::string KnowledgeVersion(const std::filesystem::path& dir);

}  // namespace backcheck::knowledge
