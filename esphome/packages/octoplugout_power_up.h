// Whether this boot is a power-up (the mains came back, the plug was plugged in) rather than a
// software reboot (an update, a crash): only a power-up follows the plug's power-up setting;
// after a reboot the relay stays as it was.
#pragma once

#include <cstdlib>
#if defined(USE_ESP8266)
#include <user_interface.h>
#elif defined(USE_ESP32)
#include <esp_system.h>
#endif

namespace octoplugout {

inline bool powered_up() {
#if defined(USE_ESP8266)
  const rst_info *info = system_get_rst_info();
  return info->reason == REASON_DEFAULT_RST || info->reason == REASON_EXT_SYS_RST;
#elif defined(USE_ESP32)
  const esp_reset_reason_t reason = esp_reset_reason();
  return reason == ESP_RST_POWERON || reason == ESP_RST_BROWNOUT || reason == ESP_RST_EXT;
#else
  // The host build has no reset cause: whoever starts it says whether it stands for a power-up.
  const char *power_up = std::getenv("OCTOPLUGOUT_POWER_UP");
  return power_up != nullptr && power_up[0] != '\0';
#endif
}

}  // namespace octoplugout
